"""SMS notices over SMPP 3.4 to the operator's SMSC, with the `smpp34` client.

One transceiver session (SMPP 3.4 §4.1.5 bind_transceiver) is opened on the first send and
kept; it is opened again after it drops. Each notice is split into parts (`sms_parts`: GSM-7
or UCS-2, concatenated with a UDH whose reference is fixed per notice, so a retry sends the
same parts) and each part is a `submit_sm` asking for a delivery receipt
(`registered_delivery` 1, §5.2.17). The SMSC's message ids are returned to the sender, which
stores them; `deliver_sm` receipts (esm_class 0x04, §5.2.12; the `receipted_message_id` and
`message_state` TLVs of §5.3.2, or the text of Appendix B "id:... stat:DELIVRD err:...") are
handed to `on_receipt` so the outbox can mark the notice delivered or failed with the reason.

Every notice also carries `user_message_reference` (TLV 0x0204, §5.3.2.17): the notice's id
modulo 65536, stable across retries, for an SMSC that recognises resubmissions.

Failures (§5.1.3 command_status): an SMSC that is down, closes the session or refuses the
bind, and the statuses "throttled", "queue full", "system error" are transient (retried with
backoff); any other refusal of a submit_sm (an invalid destination, a message too long ...) is
permanent for that notice.

`SmsProvider` is the port an HTTP SMS provider would implement as well (`send_text`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import smpp34

from tawasol.adapters.notify.delivery import DeliveryError
from tawasol.adapters.notify.sms_parts import split_sms
from tawasol.domain.notices import DeliveryReceipt, Notice

__all__ = ["SmppAccount", "SmppChannel", "SmsProvider", "parse_receipt"]

log = logging.getLogger(__name__)

# SMPP 3.4 §5.1.3: statuses worth retrying later (the SMSC is busy or broken, not the message)
_TRANSIENT = {
    0x00000008: "ESME_RSYSERR",
    0x00000014: "ESME_RMSGQFUL",
    0x00000058: "ESME_RTHROTTLED",
    0x00000064: "ESME_RX_T_APPN",
}
# optional parameter tags (SMPP 3.4 §5.3.2)
_TLV_USER_MESSAGE_REFERENCE = 0x0204
_TLV_RECEIPTED_MESSAGE_ID = 0x001E
_TLV_MESSAGE_STATE = 0x0427
_RECEIPT = 0x04  # esm_class: SMSC delivery receipt (§5.2.12)
# message_state TLV values (§5.2.28)
_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
_FINAL_FAILURES = {"EXPIRED", "DELETED", "UNDELIV", "UNKNOWN", "REJECTD"}
_RECEIPT_TEXT = re.compile(rb"id:(?P<id>\S+).*?stat:(?P<stat>\w+)(?:.*?err:(?P<err>\w+))?", re.S)


@dataclass(frozen=True)
class SmppAccount:
    """Where and as whom SMS are sent: the SMSC's address, the ESME's system_id and password
    (given by the SMSC's operator), the sender shown to subscribers (`source_addr`: an
    alphanumeric name of at most 11 characters, or a number) and a bound on each exchange."""

    host: str
    port: int
    system_id: str
    password: str
    source_addr: str = "tawasol"
    system_type: str = ""
    timeout_s: float = 10.0

    @property
    def source_ton(self) -> int:
        # SMPP 3.4 §5.2.5: TON 5 alphanumeric, 1 international (digits)
        return 1 if self.source_addr.lstrip("+").isdigit() else 5


class SmsProvider(Protocol):
    """Sends one text to one number (E.164, digits with or without "+"); returns the
    references the provider gave its parts. Raises DeliveryError."""

    async def send_text(self, number: str, text: str, *, reference: int) -> tuple[str, ...]: ...


def parse_receipt(event: smpp34.DeliverSmEvent) -> DeliveryReceipt | None:
    """A delivery receipt's outcome, or None when `event` is not a final receipt (an MO
    message, or an intermediate ENROUTE/ACCEPTD notification)."""
    if not event.esm_class & _RECEIPT:
        return None
    tlvs = {tlv.tag: tlv.value for tlv in event.tlvs}
    match = _RECEIPT_TEXT.search(event.short_message)
    reference = tlvs.get(_TLV_RECEIPTED_MESSAGE_ID, b"").rstrip(b"\x00").decode(
        "ascii", "replace"
    ) or (match.group("id").decode("ascii", "replace") if match else "")
    state_tlv = tlvs.get(_TLV_MESSAGE_STATE)
    if state_tlv:
        state = _STATES.get(state_tlv[0], "UNKNOWN")
    elif match:
        state = match.group("stat").decode("ascii", "replace").upper()
    else:
        return None
    if not reference:
        return None
    if state == "DELIVRD":
        return DeliveryReceipt(reference, delivered=True)
    if state in _FINAL_FAILURES:
        error = match.group("err") if match and match.group("err") else b""
        detail = f" err:{error.decode('ascii', 'replace')}" if error else ""
        return DeliveryReceipt(reference, delivered=False, reason=f"{state}{detail}")
    return None


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__  # a timeout has no message of its own


class SmppChannel:
    """Sends SMS notices through one SMPP session; receipts go to `on_receipt`."""

    def __init__(
        self,
        account: SmppAccount,
        *,
        on_receipt: Callable[[DeliveryReceipt], Awaitable[None]] | None = None,
    ) -> None:
        self._account = account
        self._on_receipt = on_receipt
        self._smsc: smpp34.Smsc | None = None
        self._client: smpp34.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def send(self, notice: Notice) -> tuple[str, ...]:
        """Raises DeliveryError (see the module docstring for which are permanent)."""
        return await self.send_text(notice.address, notice.text, reference=notice.id)

    async def send_text(self, number: str, text: str, *, reference: int) -> tuple[str, ...]:
        """Send `text` to `number`; returns the SMSC's message id of each part."""
        destination = number.strip().lstrip("+")
        if not destination.isdigit() or not 6 <= len(destination) <= 15:  # ITU-T E.164
            raise DeliveryError(f"not a phone number: {number!r}", permanent=True)
        try:
            sms = split_sms(text, reference=reference)
        except ValueError as error:
            raise DeliveryError(str(error), permanent=True) from error
        account = self._account
        async with self._lock:  # one message's parts go out together, in order
            smsc = await self._session()
            ids = []
            for part in sms.parts:
                try:
                    answer = await asyncio.wait_for(
                        smsc.submit_sm(
                            destination_addr=destination,
                            short_message=part,
                            source_addr=account.source_addr,
                            source_addr_ton=account.source_ton,
                            source_addr_npi=1 if account.source_ton == 1 else 0,
                            dest_addr_ton=1,  # international
                            dest_addr_npi=1,  # ISDN (E.164)
                            esm_class=sms.esm_class,
                            data_coding=sms.data_coding,
                            registered_delivery=1,
                            tlvs=[
                                smpp34.Tlv(
                                    _TLV_USER_MESSAGE_REFERENCE,
                                    (reference % 65536).to_bytes(2, "big"),
                                )
                            ],
                        ),
                        account.timeout_s,
                    )
                except (smpp34.SmppError, OSError, TimeoutError) as error:
                    await self._drop()
                    raise DeliveryError(
                        f"SMSC did not answer: {_describe(error)}", permanent=False
                    ) from error
                if not answer.is_success:
                    status = answer.command_status
                    name = _TRANSIENT.get(status)
                    raise DeliveryError(
                        f"SMSC refused the message: {name or f'command_status 0x{status:08X}'}",
                        permanent=name is None,
                    )
                ids.append(answer.message_id or "")
            return tuple(ids)

    async def _session(self) -> smpp34.Smsc:
        if self._smsc is not None and self._reader is not None and not self._reader.done():
            return self._smsc
        await self._drop()
        account = self._account
        client = smpp34.Client(
            host=account.host,
            port=account.port,
            system_id=account.system_id,
            password=account.password,
            bind_type="TRX",
            system_type=account.system_type,
            connect_timeout_ms=int(account.timeout_s * 1000),
        )
        try:
            smsc = await asyncio.wait_for(client.connect(), account.timeout_s)
        except (smpp34.SmppError, OSError, TimeoutError) as error:
            with contextlib.suppress(Exception):
                await client.stop()
            raise DeliveryError(
                f"SMSC unreachable or refused the bind: {_describe(error)}", permanent=False
            ) from error
        self._client, self._smsc = client, smsc
        self._reader = asyncio.create_task(self._read(smsc), name="smpp-receipts")
        return smsc

    async def _read(self, smsc: smpp34.Smsc) -> None:
        while True:
            event = await smsc.next()
            if isinstance(event, smpp34.Disconnected):
                log.info("SMPP session to %s ended", self._account.host)
                return
            receipt = parse_receipt(event)
            if receipt is not None and self._on_receipt is not None:
                try:
                    await self._on_receipt(receipt)
                except Exception:
                    log.exception("delivery receipt %s not recorded", receipt.reference)

    async def _drop(self) -> None:
        reader, client = self._reader, self._client
        self._reader = self._client = self._smsc = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if client is not None:
            with contextlib.suppress(Exception):
                await client.stop()

    async def close(self) -> None:
        """Unbind (SMPP 3.4 §4.2) and close the session, if one is open."""
        if self._smsc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._smsc.unbind(), self._account.timeout_s)
        await self._drop()
