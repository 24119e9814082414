"""Hand-made SIP over UDP for the attacks SIPp cannot play: replayed credentials, bytes that are
not UTF-8, forged nonces. Everything on 127.0.0.0/8; every wait bounded."""

from __future__ import annotations

import hashlib
import re
import socket
import time
import uuid
from dataclasses import dataclass

_NONCE = re.compile(r'nonce="([^"]+)"')
_REALM = re.compile(r'realm="([^"]+)"')


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest(
    *, user: str, password: str, realm: str, nonce: str, uri: str, method: str = "INVITE"
) -> str:
    """A Proxy-Authorization value (RFC 2617 §3.2.2, qop=auth) as a phone computes it."""
    ha1 = md5(f"{user}:{realm}:{password}")
    cnonce, nc = uuid.uuid4().hex[:16], "00000001"
    response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{md5(f'{method}:{uri}')}")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'
    )


@dataclass
class Reply:
    status: int
    text: str

    def header(self, name: str) -> str | None:
        for line in self.text.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def nonce(self) -> str:
        found = _NONCE.search(self.header("Proxy-Authenticate") or "")
        assert found, self.text
        return found.group(1)


class RawPhone:
    """One UDP socket bound to `source_ip`, sending requests built here to the edge."""

    def __init__(self, edge_port: int, source_ip: str = "127.0.0.1") -> None:
        self.edge_port = edge_port
        self.source_ip = source_ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source_ip, 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawPhone:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def invite(
        self,
        *,
        user: str,
        dialled: str,
        call_id: str | None = None,
        from_tag: bytes | str | None = None,
        cseq: int = 1,
        credentials: str | None = None,
        user_agent: bytes | str = "tawasol-raw-phone",
    ) -> bytes:
        """An INVITE with an SDP body, as bytes (so that tests can put any byte in it)."""
        call_id = call_id or f"raw-{uuid.uuid4().hex}"
        tag = from_tag if from_tag is not None else uuid.uuid4().hex[:10]
        tag_bytes = tag if isinstance(tag, bytes) else tag.encode()
        agent = user_agent if isinstance(user_agent, bytes) else user_agent.encode()
        host = f"127.0.0.1:{self.edge_port}"
        body = (
            f"v=0\r\no=phone 1 1 IN IP4 {self.source_ip}\r\ns=-\r\n"
            f"c=IN IP4 {self.source_ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
        ).encode()
        head = (
            f"INVITE sip:{dialled}@{host} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.source_ip}:{self.port};branch=z9hG4bK{uuid.uuid4().hex};"
            "rport\r\n"
            f"Max-Forwards: 70\r\n"
        ).encode()
        head += b'From: "' + user.encode() + b'" <sip:' + user.encode() + b"@" + host.encode()
        head += b">;tag=" + tag_bytes + b"\r\n"
        head += (
            f"To: <sip:{dialled}@{host}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n"
            f"Contact: <sip:{user}@{self.source_ip}:{self.port}>\r\n"
        ).encode()
        if credentials:
            head += f"Proxy-Authorization: {credentials}\r\n".encode()
        head += b"User-Agent: " + agent + b"\r\n"
        head += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        return head + body

    def send(self, message: bytes) -> None:
        self.sock.sendto(message, ("127.0.0.1", self.edge_port))

    def replies(self, *, until_final: bool = True, timeout_s: float = 3.0) -> list[Reply]:
        """Replies received until a final one (>= 200) or `timeout_s` of silence."""
        found: list[Reply] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                break
            text = data.decode("utf-8", "replace")
            first = text.split("\r\n", 1)[0]
            if not first.startswith("SIP/2.0 "):
                continue  # a request (the edge does not send any to a caller here)
            reply = Reply(status=int(first.split()[1]), text=text)
            found.append(reply)
            if until_final and reply.status >= 200:
                break
        return found

    def ask(self, message: bytes, timeout_s: float = 3.0) -> list[Reply]:
        self.send(message)
        return self.replies(timeout_s=timeout_s)

    def ack(self, reply: Reply, *, dialled: str) -> None:
        """ACK a non-2xx final answer (RFC 3261 §17.1.1.3), so that the edge stops resending."""
        host = f"127.0.0.1:{self.edge_port}"
        via = reply.header("Via") or ""
        lines = [
            f"ACK sip:{dialled}@{host} SIP/2.0",
            f"Via: {via}",
            "Max-Forwards: 70",
            f"From: {reply.header('From')}",
            f"To: {reply.header('To')}",
            f"Call-ID: {reply.header('Call-ID')}",
            f"CSeq: {(reply.header('CSeq') or '1').split()[0]} ACK",
            "Content-Length: 0",
        ]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())


def realm_of(reply: Reply) -> str:
    found = _REALM.search(reply.header("Proxy-Authenticate") or "")
    assert found, reply.text
    return found.group(1)
