"""A brain on a real SQLite store with the sample operator, for the integration tests (the
`brain` and `client` fixtures of conftest.py use it)."""

from __future__ import annotations

from datetime import UTC, datetime

from tawasol.adapters.store import migrate
from tawasol.composition import Brain, build_brain
from tawasol.config import Settings
from tawasol.services.sample_operator import seed_sample_operator

TOKEN = "test-admin-token-0123456789"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sample_brain(data_dir, **settings: object) -> Brain:
    """A brain on a new SQLite database in `data_dir` with the sample operator, at `NOW`."""
    configured = Settings(data_dir=data_dir, admin_token=TOKEN, catalog_refresh_ms=0, **settings)
    migrate(configured.resolved_database_url)
    brain = build_brain(configured, clock=lambda: NOW)
    seed_sample_operator(brain.catalog, now=NOW)
    return brain
