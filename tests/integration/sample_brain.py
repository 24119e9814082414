"""A brain on a real SQLite store with the sample operator, for the integration tests (the
`brain` and `client` fixtures of conftest.py use it; a module that needs other settings, its
own clock or more subscribers overrides `brain` with `sample_brain(...)` and keeps `client`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tawasol.adapters.store import migrate
from tawasol.composition import Brain, build_brain
from tawasol.config import Settings
from tawasol.services.sample_operator import seed_sample_operator

TOKEN = "test-admin-token-0123456789"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class MovableClock:
    """The brain's clock in a test that moves time by hand (`clock.now += timedelta(...)`)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sample_brain(
    data_dir: Path,
    *,
    clock: Callable[[], datetime] = lambda: NOW,
    seeded_at: datetime | None = None,
    **settings: object,
) -> Brain:
    """A brain on a new SQLite database in `data_dir` with the sample operator seeded at
    `seeded_at` (default: the clock's now), reading the time from `clock` (default: `NOW`)."""
    configured = Settings(
        data_dir=data_dir,
        admin_token=TOKEN,
        catalog_refresh_ms=0,
        **settings,  # type: ignore[arg-type]
    )
    migrate(configured.resolved_database_url)
    brain = build_brain(configured, clock=clock)
    seed_sample_operator(brain.catalog, now=seeded_at or clock())
    return brain


def add_callers(
    brain: Brain, count: int, *, now: datetime, locales: Sequence[str] = ()
) -> list[str]:
    """`count` more subscribers on the monthly Morocco plan since yesterday (`caller0`,
    `caller1`...), so that tests needing many calls at once (one call each at a time) have
    callers of their own; `locales` gives the first ones' languages (else French). Returns
    their SIP usernames."""
    usernames = []
    for index in range(count):
        username = f"caller{index}"
        brain.catalog.add_subscriber(
            name=f"Caller {index}",
            email=f"{username}@example.org",
            phone=f"+336120000{index:02d}",
            locale=locales[index] if index < len(locales) else "fr",
            time_zone="Europe/Paris",
            sip_username=username,
            password=f"caller-pass-{index}-of-{count}",
            plan_code="maroc-illimite-mois",
            start=now - timedelta(days=1),
        )
        usernames.append(username)
    return usernames
