"""Shared by the integration tests that run the brain's app on a real SQLite store with the
sample operator (a module may define its own `brain`/`client`, which then take precedence)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from edge_support import edge_headers
from fastapi.testclient import TestClient
from sample_brain import sample_brain

from tawasol.adapters.api.app import create_app
from tawasol.composition import Brain


@pytest.fixture
def brain(tmp_path) -> Iterator[Brain]:
    brain = sample_brain(tmp_path)
    yield brain
    brain.close()


@pytest.fixture
def client(brain) -> Iterator[TestClient]:
    with TestClient(create_app(brain), raise_server_exceptions=False) as client:
        client.headers.update(edge_headers(brain))  # the SIP decision API answers the edge only
        yield client
