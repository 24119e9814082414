"""The `tawasol` command: set up, run and inspect a tawasol operator.

    tawasol init                      create or upgrade the database (data kept)
    tawasol seed --sample --demo      load the sample operator (demo mode, empty database)
    tawasol up / down                 run / stop the brain and the Kamailio edge
    tawasol serve                     run the brain's HTTP API alone
    tawasol sip config                the Kamailio configuration for these settings
    tawasol explain USER NUMBER       why a call is (or is not) allowed, from the running brain
    tawasol subscriber add|list|show|change-plan|set-country|password   manage subscribers
    tawasol plan list                 the plans on sale
    tawasol carriers status|capacity|events|rates  carriers at run time
    tawasol calls report --since DATE calls answered, not answered and refused per reason
    tawasol incidents list|show|open|update|resolve|reopen|merge   outages (docs/incidents.md)
    tawasol billing run|payment|refund|credits   renewals, invoices, outage credits, money
    tawasol billing change-plan|cancel|pause|resume   the subscription lifecycle
    tawasol billing revenue|margins   reports per plan and destination (docs/billing.md)
    tawasol payments methods|method-add|list|refund|dunning|events   cards, refunds, dunning
    tawasol payments sepa mandate add|revoke|list, batch, returns, transfers   SEPA debits
    tawasol direct trunk|pool|caller-id|contact   calling from any phone (docs/direct-numbers.md)

Global options (`--data-dir`, `--database-url`) override the TAWASOL_* environment.
"""

from __future__ import annotations

import sys

# The order of these imports is the order of the commands in --help.
from tawasol.cli import setup  # noqa: F401 - registers its commands

# isort: split
from tawasol.cli import calls, subscribers  # noqa: F401

# isort: split
from tawasol.cli import billing, carriers, direct, incidents, payments, sepa  # noqa: F401
from tawasol.cli.common import app, errors
from tawasol.domain.errors import TawasolError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except TawasolError as error:  # pragma: no cover - commands catch their own
        errors.print(f"error: {error.message}")
        sys.exit(1)
