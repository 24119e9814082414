"""A real SMPP 3.4 server (SMSC) for tests: the `smpp34` server engine on a free loopback port,
in a thread of its own, counting what arrives and reassembling concatenated messages.

    with Smsc() as smsc:                      # or the `smsc` fixture (tests/conftest.py)
        settings = Settings(notice_smpp_host="127.0.0.1", notice_smpp_port=smsc.port,
                            notice_smpp_system_id="tawasol", ...)
        ...
        smsc.wait_for(3)                       # three whole messages arrived
        smsc.texts_to("33612000000")           # ["Bonjour ..."]

Every `submit_sm` is accepted with a fresh message id and, when `registered_delivery` asks
for it, answered by a delivery receipt (SMPP 3.4 Appendix B text plus the
`receipted_message_id` and `message_state` TLVs): DELIVRD, or UNDELIV for numbers in
`undeliverable`. `refuse_status` makes it refuse every submit_sm with that command_status.
`BindRefusingSmsc` answers every bind with ESME_RBINDFAIL (the smpp34 server accepts every
bind, so that one speaks the few bytes of the bind exchange itself).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import smpp34

from tawasol.adapters.notify.sms_parts import UDHI, join_parts

__all__ = ["BindRefusingSmsc", "SmsMessage", "Smsc", "smsc"]

LOCALHOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class SmsMessage:
    """One whole message as a handset shows it (its parts reassembled); `at` is when its last
    part arrived (wall clock)."""

    destination: str
    source: str
    text: str
    data_coding: int
    parts: list[bytes] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    user_reference: int | None = None
    at: float = field(default_factory=time.time)


class Smsc:
    """The SMSC side of tests (see the module docstring). Thread-safe readers."""

    def __init__(self, *, system_id: str = "TESTSMSC") -> None:
        self.port = _free_port()
        self.system_id = system_id
        self.undeliverable: set[str] = set()
        self.refuse_status: int | None = None
        self.parts_received = 0
        self._messages: list[SmsMessage] = []
        self._pending: dict[tuple[str, int], dict[int, tuple[bytes, str]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="test-smsc", daemon=True)
        self._error: BaseException | None = None

    # -- what arrived ------------------------------------------------------------------------
    @property
    def messages(self) -> list[SmsMessage]:
        with self._lock:
            return list(self._messages)

    def texts_to(self, destination: str) -> list[str]:
        return [m.text for m in self.messages if m.destination == destination.lstrip("+")]

    def per_destination(self) -> Counter[str]:
        return Counter(message.destination for message in self.messages)

    def wait_for(self, count: int, *, seconds: float = 30.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return True
            time.sleep(0.02)
        return len(self.messages) >= count

    # -- running -----------------------------------------------------------------------------
    def __enter__(self) -> Smsc:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the test SMSC did not start: {self._error!r}")
        if self._error is not None:
            raise RuntimeError(f"the test SMSC did not start: {self._error!r}")

    def stop(self) -> None:
        if self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:  # reported by start()
            self._error = error
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = smpp34.Server(host=LOCALHOST, port=self.port, system_id=self.system_id)
        await server.start()
        self._ready.set()
        sessions: dict[str, smpp34.Esme] = {}
        receipts: set[asyncio.Task[None]] = set()
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            while True:
                pulled = asyncio.ensure_future(server.next())
                done, _ = await asyncio.wait({pulled, stopping}, return_when="FIRST_COMPLETED")
                if stopping in done:
                    pulled.cancel()
                    break
                event = pulled.result()
                if isinstance(event, smpp34.Esme):
                    sessions[event.session_id] = event
                elif isinstance(event, smpp34.Unbound):
                    sessions.pop(event.session_id, None)
                elif isinstance(event, smpp34.SubmitSmEvent):
                    if self.refuse_status is not None:
                        event.reject(self.refuse_status)
                        continue
                    message_id = f"smsc-{next(self._ids)}"
                    event.accept(message_id=message_id)
                    self._received(event, message_id)
                    esme = sessions.get(event.session_id)
                    if event.registered_delivery & 1 and esme is not None:
                        task = asyncio.create_task(self._receipt(esme, event, message_id))
                        receipts.add(task)
                        task.add_done_callback(receipts.discard)
        finally:
            for task in receipts:
                task.cancel()
            await server.stop()

    def _received(self, event: smpp34.SubmitSmEvent, message_id: str) -> None:
        tlvs = {tlv.tag: tlv.value for tlv in event.tlvs}
        reference = tlvs.get(0x0204)
        user_reference = int.from_bytes(reference, "big") if reference else None
        data = event.short_message
        with self._lock:
            self.parts_received += 1
            if not event.esm_class & UDHI:
                text = join_parts([data], data_coding=event.data_coding, esm_class=0)
                self._messages.append(
                    SmsMessage(
                        event.destination_addr,
                        event.source_addr,
                        text,
                        event.data_coding,
                        [data],
                        [message_id],
                        user_reference,
                    )
                )
                return
            ref, total, seq = data[3], data[4], data[5]  # UDH: 05 00 03 ref total seq
            pending = self._pending.setdefault((event.destination_addr, ref), {})
            pending[seq] = (data, message_id)
            if len(pending) < total:
                return
            del self._pending[(event.destination_addr, ref)]
            parts = [pending[index][0] for index in sorted(pending)]
            self._messages.append(
                SmsMessage(
                    event.destination_addr,
                    event.source_addr,
                    join_parts(parts, data_coding=event.data_coding, esm_class=event.esm_class),
                    event.data_coding,
                    parts,
                    [pending[index][1] for index in sorted(pending)],
                    user_reference,
                )
            )

    async def _receipt(
        self, esme: smpp34.Esme, event: smpp34.SubmitSmEvent, message_id: str
    ) -> None:
        await asyncio.sleep(0.01)
        failed = event.destination_addr in self.undeliverable
        stat, state, err = ("UNDELIV", 5, "001") if failed else ("DELIVRD", 2, "000")
        now = time.strftime("%y%m%d%H%M", time.gmtime())
        text = (
            f"id:{message_id} sub:001 dlvrd:{'000' if failed else '001'} submit date:{now} "
            f"done date:{now} stat:{stat} err:{err} text:"
        ).encode("ascii")
        try:
            await esme.deliver_sm(
                destination_addr=event.source_addr,
                source_addr=event.destination_addr,
                esm_class=0x04,
                short_message=text,
                tlvs=[
                    smpp34.Tlv(0x001E, message_id.encode("ascii") + b"\x00"),
                    smpp34.Tlv(0x0427, bytes([state])),
                ],
            )
        except Exception:  # the ESME went away: its receipt is lost, as on a real SMSC link
            return


class BindRefusingSmsc:
    """A TCP listener that answers every bind with ESME_RBINDFAIL (SMPP 3.4 §5.1.3, 0x0D)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.binds = 0
        self._server = socket.create_server((LOCALHOST, self.port))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> BindRefusingSmsc:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    header = connection.recv(16)
                    length, command_id, _status, sequence = struct.unpack(">IIII", header)
                    connection.recv(length - 16)
                except (OSError, struct.error):
                    continue
                self.binds += 1
                body = b"TESTSMSC\x00"
                connection.sendall(
                    struct.pack(">IIII", 16 + len(body), command_id | 0x80000000, 0x0D, sequence)
                    + body
                )
                time.sleep(0.05)


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    """A running test SMSC (import this fixture: `from support.smpp import smsc`)."""
    with Smsc() as server:
        yield server
