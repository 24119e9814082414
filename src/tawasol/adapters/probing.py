"""SIP OPTIONS probing of every carrier gateway, from the brain.

Why the brain and not Kamailio's dispatcher or keepalive module: the state a probe finds must
reach the routing decision (taken in the brain), be stored with its time (incidents and
compensation are built on it), and be combined with what calls themselves say (503s, capacity).
Probing from the brain puts all three in one place, with no second channel from Kamailio to the
brain; the cost is a few UDP datagrams per gateway every few seconds.

RFC 3261 §11: OPTIONS asks a server its capabilities; any final answer proves it is there. A 5xx
answer (503: overloaded, out of service) or silence counts as a failure; anything else
(200, and also 403/404/405 from carriers that refuse OPTIONS from strangers) as alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tawasol.domain.carriers import Carrier, Gateway, Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeResult:
    carrier: str
    answered: bool
    detail: str


def options_request(gateway: Gateway, *, local_host: str, local_port: int, call_id: str) -> bytes:
    host = f"[{gateway.host}]" if ":" in gateway.host else gateway.host
    via_host = f"[{local_host}]" if ":" in local_host else local_host
    transport = gateway.transport.value.upper()
    branch = "z9hG4bK" + secrets.token_hex(8)
    tag = secrets.token_hex(4)
    return (
        f"OPTIONS sip:{host}:{gateway.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {via_host}:{local_port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{via_host}>;tag={tag}\r\n"
        f"To: <sip:{host}:{gateway.port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "User-Agent: tawasol-probe\r\n"
        "Accept: application/sdp\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def status_of(response: bytes) -> int | None:
    """The status code of a SIP response, or None if it is not one."""
    first_line = response.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(first_line) >= 2 and first_line[0] == b"SIP/2.0" and first_line[1].isdigit():
        return int(first_line[1])
    return None


def call_id_of(message: bytes) -> str | None:
    for line in message.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip().decode(errors="replace")
    return None


class _Responses(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[int]] = {}

    def datagram_received(self, data: bytes, addr: object) -> None:
        call_id = call_id_of(data)
        status = status_of(data)
        if call_id is None or status is None or status < 200:
            return  # provisional answers or stray packets: wait for the final one
        future = self.waiting.get(call_id)
        if future is not None and not future.done():
            future.set_result(status)


class OptionsProber:
    """Probes every gateway of every carrier once per round; a carrier answers if any of its
    gateways does."""

    def __init__(self, *, local_host: str = "0.0.0.0", timeout_s: float = 1.0) -> None:
        self._local_host = local_host
        self._timeout_s = timeout_s

    async def probe_round(self, carriers: Sequence[Carrier]) -> list[ProbeResult]:
        loop = asyncio.get_running_loop()
        protocol = _Responses()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=(self._local_host, 0), family=socket.AF_INET
        )
        try:
            local_port = transport.get_extra_info("sockname")[1]
            checks = []
            for carrier in carriers:
                if not carrier.enabled:
                    continue
                for gateway in carrier.gateways:
                    checks.append(
                        self._probe(carrier.code, gateway, transport, protocol, local_port)
                    )
            outcomes = await asyncio.gather(*checks)
        finally:
            transport.close()
        by_carrier: dict[str, list[tuple[bool, str]]] = {}
        for code, answered, detail in outcomes:
            by_carrier.setdefault(code, []).append((answered, detail))
        return [
            ProbeResult(
                carrier=code,
                answered=any(answered for answered, _ in results),
                detail="; ".join(detail for _, detail in results),
            )
            for code, results in by_carrier.items()
        ]

    async def _probe(
        self,
        carrier: str,
        gateway: Gateway,
        transport: asyncio.DatagramTransport,
        protocol: _Responses,
        local_port: int,
    ) -> tuple[str, bool, str]:
        name = f"{gateway.name} {gateway.host}:{gateway.port}"
        if gateway.transport is not Transport.UDP:
            return (carrier, *await self._probe_stream(gateway, name))
        call_id = f"probe-{secrets.token_hex(8)}"
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        protocol.waiting[call_id] = future
        local_host = self._local_host if self._local_host != "0.0.0.0" else "127.0.0.1"
        try:
            transport.sendto(
                options_request(
                    gateway, local_host=local_host, local_port=local_port, call_id=call_id
                ),
                (gateway.host, gateway.port),
            )
            status = await asyncio.wait_for(future, self._timeout_s)
        except (TimeoutError, OSError) as error:
            return carrier, False, f"{name}: no answer ({type(error).__name__})"
        finally:
            protocol.waiting.pop(call_id, None)
        return carrier, status < 500, f"{name}: {status}"

    async def _probe_stream(self, gateway: Gateway, name: str) -> tuple[bool, str]:
        if gateway.transport is Transport.TLS:
            return True, f"{name}: TLS gateways are not probed"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(gateway.host, gateway.port), self._timeout_s
            )
        except (TimeoutError, OSError) as error:
            return False, f"{name}: cannot connect ({type(error).__name__})"
        try:
            local_host, local_port = writer.get_extra_info("sockname")[:2]
            writer.write(
                options_request(
                    gateway,
                    local_host=local_host,
                    local_port=local_port,
                    call_id=f"probe-{secrets.token_hex(8)}",
                )
            )
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), self._timeout_s)
        except (TimeoutError, OSError) as error:
            return False, f"{name}: no answer ({type(error).__name__})"
        finally:
            writer.close()
        status = status_of(line)
        if status is None:
            return False, f"{name}: not a SIP answer"
        return status < 500, f"{name}: {status}"


async def probe_forever(
    *,
    prober: OptionsProber,
    carriers: Callable[[], Sequence[Carrier]],
    on_result: Callable[[ProbeResult], object],
    interval_s: float,
    stop: asyncio.Event,
    quick_rounds: int = 1,
) -> None:
    """Probe every `interval_s` until `stop` is set; one failing round never ends the loop.

    The first `quick_rounds` rounds follow each other at once (a round lasts at most the
    probe timeout): right after a start, carriers' states are confirmed in seconds.
    """
    rounds = 0
    while not stop.is_set():
        try:
            for result in await prober.probe_round(carriers()):
                on_result(result)
        except Exception:
            log.exception("probe round failed")
        rounds += 1
        pause = 0.05 if rounds < quick_rounds else interval_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(pause, interval_s))
