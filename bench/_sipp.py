"""SIPp 3.6 for bench/sip_throughput.py: the scenarios, a carrier, a caller, their statistics.

The carrier answers at once (no ringing) and answers the brain's OPTIONS probes; the callers
hang up `talk_ms` after the answer, with or without digest authentication. SIPp is started,
bounded and read by tests/support/sipp.py, as the e2e tests start it: every run is bounded by
`-m` (calls) and `-timeout`, and by a wall-clock deadline after which it is killed (SIPp 3.6
does not always honour `-timeout`). Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# tests/support holds the one way tests, benchmarks and `tawasol up` start the brain and SIPp
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.sipp import (
    read_sipp_stats,
    sipp_command,
    start_sipp,
    stat_count,
    stop_sipp,
    wait_sipp,
    wait_udp_bound,
)
from support.stack import LOCALHOST

DIALLED = "00212661234567"  # a Moroccan mobile: in the plan, on both carriers


# -- SIPp scenarios -------------------------------------------------------------------------------
_SDP = """
      v=0
      o=caller 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8
      a=rtpmap:0 PCMU/8000
"""

_INVITE = """
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[caller]@[remote_ip]:[remote_port]>;tag=[pid]c[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port];transport=[transport]>
      {authentication}Max-Forwards: 70
      User-Agent: tawasol-bench
      Content-Type: application/sdp
      Content-Length: [len]
"""

_ANSWERED_AND_HUNG_UP = """
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true" rtd="answer"/>

  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[caller]@[remote_ip]:[remote_port]>;tag=[pid]c[call_number]
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <pause milliseconds="{talk_ms}"/>

  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[caller]@[remote_ip]:[remote_port]>;tag=[pid]c[call_number]
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: {bye_cseq} BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <recv response="200" crlf="true"/>
"""


def _invite(*, cseq: int, authenticated: bool, rtd: bool) -> str:
    start = ' start_rtd="answer"' if rtd else ""
    authentication = "[authentication]\n      " if authenticated else ""
    return (
        f'  <send retrans="500"{start}>\n    <![CDATA[\n'
        + _INVITE.format(cseq=cseq, authentication=authentication)
        + _SDP
        + "\n    ]]>\n  </send>\n"
    )


def caller_plain(talk_ms: int) -> str:
    """The bare relay's caller: INVITE, 200, ACK, `talk_ms`, BYE. RTD "answer": INVITE -> 200."""
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="bench caller, no auth">\n'
        + _invite(cseq=1, authenticated=False, rtd=True)
        + _ANSWERED_AND_HUNG_UP.format(cseq=1, bye_cseq=2, talk_ms=talk_ms)
        + "</scenario>\n"
    )


def caller_digest(talk_ms: int) -> str:
    """tawasol's caller: INVITE, 407, ACK, INVITE with credentials (-au/-ap), 200, ACK,
    `talk_ms`, BYE. RTD "answer": the authenticated INVITE -> 200 (what the decision adds to).
    """
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="bench caller, digest">\n'
        + _invite(cseq=1, authenticated=False, rtd=False)
        + """
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>

  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:[caller]@[remote_ip]:[remote_port]>;tag=[pid]c[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

"""
        + _invite(cseq=2, authenticated=True, rtd=True)
        + _ANSWERED_AND_HUNG_UP.format(cseq=2, bye_cseq=3, talk_ms=talk_ms)
        + "</scenario>\n"
    )


#: A carrier's gateway that answers 200 at once (no ringing), then the BYE. It also answers the
#: brain's OPTIONS probes, each as a call of its own.
CARRIER_ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench carrier">
  <recv request="OPTIONS" optional="true" next="probe"/>
  <recv request="INVITE" crlf="true" next="call"/>

  <label id="probe"/>
  <send next="end">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]p[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>

  <label id="call"/>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]g[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=carrier 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>

  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>

  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>

  <label id="end"/>
</scenario>
"""


def write_scenarios(directory: Path, *, talk_ms: int) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in (
        ("caller_plain", caller_plain(talk_ms)),
        ("caller_digest", caller_digest(talk_ms)),
        ("carrier_answer", CARRIER_ANSWER),
    ):
        paths[name] = directory / f"{name}.xml"
        paths[name].write_text(text)
    return paths


# -- SIPp ---------------------------------------------------------------------------------------
@dataclass
class SippCarrier:
    """A carrier's gateway played by SIPp in server mode, restarted for every load step so
    that its statistics (retransmissions, failed calls) are the step's own."""

    scenario: Path
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    stats_file: Path | None = None
    _runs: int = 0

    def start(self, *, calls: int, timeout_s: float) -> None:
        self._runs += 1
        self.stats_file = self.workdir / f"carrier-{self.port}-{self._runs}.csv"
        command = sipp_command(
            self.scenario,
            port=self.port,
            calls=calls + 1000,  # the brain's OPTIONS probes count as calls too
            timeout_s=timeout_s,
            stats_file=self.stats_file,
        )
        self.process = start_sipp(command, workdir=self.workdir)
        wait_udp_bound(self.port)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> dict[str, str]:
        """SIGINT (SIPp then writes its final statistics), SIGKILL if it hangs."""
        stop_sipp(self.process, how=signal.SIGINT)
        self.process = None
        return read_sipp_stats(self.stats_file) if self.stats_file else {}


@dataclass
class CallerResult:
    """What one SIPp caller run saw."""

    rate: float
    calls: int
    created: int
    successful: int
    failed: int
    retransmissions: int
    elapsed_s: float
    cpu_s: float
    killed: bool
    answer_ms: list[int] = field(default_factory=list)  # RTD "answer", whole ms (SIPp's unit)
    output: str = ""

    @property
    def achieved_rate(self) -> float:
        return self.created / self.elapsed_s if self.elapsed_s else 0.0


def run_caller(
    scenario: Path,
    *,
    target_port: int,
    rate: float,
    calls: int,
    workdir: Path,
    name: str,
    user: str = "bench",
    password: str | None = None,
    deadline_s: float,
    rtt: bool = False,
) -> CallerResult:
    """Place `calls` calls at `rate` per second; killed if still running after `deadline_s`."""
    stats_file = workdir / f"caller-{name}.csv"
    extra = [
        "-s", DIALLED, "-r", f"{rate:g}", "-rp", "1000",
        # at most two seconds' worth of calls open at once: an overloaded edge slows the
        # caller down (and shows in the achieved rate) instead of piling up calls
        "-l", str(max(10, int(rate * 2))),
        "-timeout_error",
    ]  # fmt: skip
    if password is not None:
        extra += ["-au", user, "-ap", password]
    if rtt:
        extra += ["-trace_rtt", "-rtt_freq", "1"]
    command = sipp_command(
        scenario,
        target=f"{LOCALHOST}:{target_port}",
        calls=calls,
        timeout_s=deadline_s,
        stats_file=stats_file,
        keys={"caller": user},
        extra=extra,
    )
    started = time.monotonic()
    process = start_sipp(command, workdir=workdir, output=subprocess.PIPE)
    ended = wait_sipp(process, deadline=started + deadline_s + 5)
    elapsed = time.monotonic() - started
    output = process.stdout.read().decode(errors="replace")[-2000:] if process.stdout else ""
    if process.stdout:
        process.stdout.close()
    stats = read_sipp_stats(stats_file)
    answer_ms: list[int] = []
    if rtt:
        for path in workdir.glob(f"{scenario.stem}_{process.pid}_rtt.csv"):
            for line in path.read_text(errors="replace").splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 3 and parts[2].strip() == "answer":
                    with contextlib.suppress(ValueError):
                        answer_ms.append(round(float(parts[1])))
    created = stat_count(stats, "OutgoingCall(C)")
    successful = stat_count(stats, "SuccessfulCall(C)")
    failed = stat_count(stats, "FailedCall(C)")
    # Calls SIPp had not placed or finished when it stopped count as failed.
    failed = max(failed, calls - successful)
    return CallerResult(
        rate=rate,
        calls=calls,
        created=created,
        successful=successful,
        failed=failed,
        retransmissions=stat_count(stats, "Retransmissions(C)"),
        elapsed_s=elapsed,
        cpu_s=ended.cpu_s,
        killed=ended.killed,
        answer_ms=answer_ms,
        output=output,
    )


def carrier_counts(stats: dict[str, str]) -> tuple[int, int]:
    """(failed calls, retransmissions) seen by a carrier."""
    return stat_count(stats, "FailedCall(C)"), stat_count(stats, "Retransmissions(C)")


def percentile(sorted_values: list[float] | list[int], fraction: float) -> float | None:
    if not sorted_values:
        return None
    return float(sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))])
