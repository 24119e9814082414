"""Shared by the integration tests that run the brain's app on a real SQLite store with the
sample operator: `brain` (sample_brain.py) and `client` (the app on it, speaking as the edge).
A module that needs other settings, a clock it moves or more subscribers defines its own
`brain` with `sample_brain(...)`/`add_callers(...)` and keeps this `client`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from edge_support import edge_client
from fastapi.testclient import TestClient
from sample_brain import sample_brain

from tawasol.composition import Brain


@pytest.fixture
def brain(tmp_path) -> Iterator[Brain]:
    brain = sample_brain(tmp_path)
    yield brain
    brain.close()


@pytest.fixture
def client(brain) -> Iterator[TestClient]:
    with edge_client(brain) as client:  # the SIP decision API answers the edge only
        yield client
