"""Shared by the integration tests: the HTTP client of a module's `brain` fixture."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tawasol.adapters.api.app import create_app


@pytest.fixture
def client(brain):
    """The brain's app over HTTP (no background probing); a server error is a 500 answer."""
    with TestClient(create_app(brain, background=False), raise_server_exceptions=False) as client:
        yield client
