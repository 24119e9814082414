"""Operator alerts: every incident, customer-facing or not, reaches the on-call email and the
webhook, through the same outbox as subscribers' notices (never lost, retried with backoff,
never queued twice). Queued when an incident opens, becomes customer-facing and is resolved;
the sender polls every second, so an alert leaves within seconds of detection. Alerts name
carriers (the operator needs them); subscribers' notices never do.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import datetime

from tawasol.domain.incidents import Incident, IncidentUpdate
from tawasol.domain.notices import Channel, Notice, NoticeOccasion, NoticePolicy
from tawasol.services.incidents import describe
from tawasol.services.notice_ports import NoticeOutbox
from tawasol.services.notices import occasions

OPERATOR = 0  # the subscriber id of alerts: nobody's, the operator's


class AlertService:
    def __init__(
        self,
        *,
        outbox: NoticeOutbox,
        clock: Callable[[], datetime],
        email: str = "",
        webhook_url: str = "",
        mail_domain: str = "tawasol.local",
        policy: NoticePolicy | None = None,
    ) -> None:
        self._outbox = outbox
        self._policy = policy
        self._clock = clock
        self._targets = [
            (channel, address)
            for channel, address in ((Channel.EMAIL, email), (Channel.WEBHOOK, webhook_url))
            if address
        ]
        self._mail_domain = mail_domain

    def on_incident_change(self, before: Incident | None, after: Incident) -> int:
        if not self._targets:
            return 0
        found = list(occasions(before, after, self._policy))
        if before is None:
            found.insert(0, (NoticeOccasion.OPENED, 1))
        notices = [
            self._alert(after, occasion, sequence, channel, address)
            for occasion, sequence in found
            for channel, address in self._targets
        ]
        return self._outbox.enqueue(notices)

    def _alert(
        self,
        incident: Incident,
        occasion: NoticeOccasion,
        sequence: int,
        channel: Channel,
        address: str,
    ) -> Notice:
        what = {
            NoticeOccasion.OPENED: "opened",
            NoticeOccasion.CUSTOMER_FACING: "customer-facing",
            NoticeOccasion.RESOLVED: "resolved",
            NoticeOccasion.UPDATE: "updated",
        }[occasion]
        subject = f"[tawasol] incident {incident.id} {what}: {incident.title}"
        impact = incident.impact[-1].impact.value if incident.impact else None
        if channel is Channel.WEBHOOK:
            text = json.dumps(
                {
                    "event": f"incident.{occasion.value}",
                    "at": self._clock().isoformat(),
                    "incident": {
                        "id": incident.id,
                        "kind": incident.kind.value,
                        "title": incident.title,
                        "state": incident.state.value,
                        "carrier": incident.carrier,
                        "scope": describe(incident.scope),
                        "customer_facing": incident.customer_facing,
                        "impact": impact,
                        "started_at": incident.started_at.isoformat(),
                        "automatic": incident.automatic,
                    },
                },
                ensure_ascii=False,
                sort_keys=True,
            )
        else:
            text = (
                f"{subject}\n\nkind: {incident.kind.value}\ncarrier: {incident.carrier or '-'}\n"
                f"scope: {describe(incident.scope)}\nstate: {incident.state.value}\n"
                f"customer-facing: {'yes, ' + (impact or '') if incident.customer_facing else 'no'}"
                f"\nstarted: {incident.started_at.isoformat()}\n\n"
                + "\n".join(_timeline_line(u) for u in incident.updates)
            )
        return Notice(
            incident_id=incident.id,
            occasion=occasion,
            occasion_seq=sequence,
            subscriber_id=OPERATOR,
            channel=channel,
            address=address,
            locale="en",
            subject=subject,
            text=text,
            html=f"<pre>{html.escape(text)}</pre>" if channel is Channel.EMAIL else "",
            message_id=(
                f"<alert-{incident.id}.{occasion.value}.{sequence}.{channel.value}"
                f"@{self._mail_domain}>"
            ),
        )


def _timeline_line(update: IncidentUpdate) -> str:
    text = update.message.get("en") or next(iter(update.message.values()))
    return f"{update.at.isoformat()} {update.author}: {text}"
