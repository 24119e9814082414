"""A brain on a fresh SQLite store holding the sample operator, at a fixed instant, for the
integration tests of the admin API (the data as `tawasol seed --sample --demo` writes it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tawasol.adapters.store import migrate
from tawasol.composition import Brain, build_brain
from tawasol.config import Settings
from tawasol.services.sample_operator import seed_sample_operator

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday


def sample_brain(data_dir: Path) -> Brain:
    """Close it when done (it writes the refused calls still queued)."""
    settings = Settings(data_dir=data_dir, admin_token=TOKEN, catalog_refresh_ms=0)
    migrate(settings.resolved_database_url)
    brain = build_brain(settings, clock=lambda: NOW)
    seed_sample_operator(brain.catalog, now=NOW)
    return brain
