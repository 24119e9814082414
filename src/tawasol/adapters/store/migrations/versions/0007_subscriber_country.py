"""Subscribers' country of residence (VAT follows it), filled from their phone numbers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

VAT on telecommunication services is the VAT of the country where the consumer lives
(Directive 2006/112/EC art. 58), which the subscriber table did not hold: billing read the
country of the phone number. This adds `subscribers.country` (ISO 3166-1 alpha-2, NULL when
unknown) and fills it for existing subscribers from the one thing known, their phone number's
country, leaving NULL where that is not a country (+800, +882...). It logs how many were
filled and how many are left unknown: the operator corrects a subscriber living elsewhere with
`tawasol subscriber set-country`; billing a subscriber without a country is refused, by name.
A country the operator set is never overwritten: only NULL values are filled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("tawasol.migrations")

subscribers = sa.table(
    "subscribers",
    sa.column("id", sa.Integer()),
    sa.column("phone", sa.Text()),
    sa.column("country", sa.CHAR(2)),
)


def _country_of(phone: str) -> str | None:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" and len(region) == 2 else None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("country", sa.CHAR(2), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(subscribers.c.id, subscribers.c.phone).where(subscribers.c.country.is_(None))
    ).all()
    by_country: dict[str, list[int]] = {}
    unknown = 0
    for subscriber_id, phone in rows:
        country = _country_of(phone)
        if country is None:
            unknown += 1
        else:
            by_country.setdefault(country, []).append(subscriber_id)
    for country, ids in by_country.items():
        for start in range(0, len(ids), 1000):
            bind.execute(
                sa.update(subscribers)
                .where(subscribers.c.id.in_(ids[start : start + 1000]))
                .where(subscribers.c.country.is_(None))
                .values(country=country)
            )
    filled = sum(len(ids) for ids in by_country.values())
    if rows:
        log.warning(
            "0007: country of residence taken from the phone number for %d subscriber(s) "
            "(%s); %d left unknown. VAT follows the country of residence: correct those who "
            "live elsewhere with `tawasol subscriber set-country`",
            filled,
            ", ".join(f"{c} {len(i)}" for c, i in sorted(by_country.items())) or "none",
            unknown,
        )


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("country")
