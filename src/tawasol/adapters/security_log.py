"""Reports of repeated failed SIP logins kept as JSON lines, one file per brain.

`data_dir/security/auth-failures.jsonl`, appended when a report is made and read back at
start-up, so that the operator's list (`GET /admin/v1/security/auth-failures`) survives a
restart and the subscriber's notices can send what was recorded. Mode 0600: it names
subscribers and addresses.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from tawasol.services.verify_credentials import AuthFailureReport

log = logging.getLogger(__name__)


class JsonLinesAuthFailureLog:
    """`AuthFailureLog` on an append-only JSON lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, report: AuthFailureReport) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(report), default=datetime.isoformat, separators=(",", ":"))
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def load(self) -> list[AuthFailureReport]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        reports = []
        for number, line in enumerate(lines, start=1):
            try:
                fields = json.loads(line)
                fields["first_at"] = datetime.fromisoformat(fields["first_at"])
                fields["last_at"] = datetime.fromisoformat(fields["last_at"])
                reports.append(AuthFailureReport(**fields))
            except (ValueError, KeyError, TypeError) as error:
                log.warning("%s line %d unreadable, skipped: %s", self.path, number, error)
        return reports
