"""Caller-ID verification codes by SMS (issue 18 item 2) through the admin API, against a real
SMPP server (tests/support/smpp.py): the code arrives at the number being verified, in the
subscriber's language (Arabic in UCS-2), and then verifies it; an SMSC that is down, refuses
the bind or the message, or never answers leaves the code for the operator, nothing lost."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sample_brain import AUTH, sample_brain
from typer.testing import CliRunner

from support.smpp import BindRefusingSmsc, Smsc, smsc  # noqa: F401 - the fixture
from support.stack import free_port
from tawasol.adapters.api.app import create_app
from tawasol.adapters.notify.sms_parts import DATA_CODING_GSM7, DATA_CODING_UCS2
from tawasol.cli import app
from tawasol.composition import Brain

ADMIN = "/admin/v1"
EXPECTED = {
    "ar": ("رمز tawasol الخاص بك: {code} (صالح 15 دقيقة). لا تعطه لأحد.", DATA_CODING_UCS2),
    "fr": (
        "Votre code tawasol : {code} (valable 15 min). Ne le donnez à personne.",
        DATA_CODING_GSM7,
    ),
    "en": ("Your tawasol code: {code} (valid 15 min). Do not give it to anyone.", DATA_CODING_GSM7),
}


def smpp_brain(data_dir: Path, port: int, *, timeout_s: float = 5.0) -> Brain:
    return sample_brain(
        data_dir,
        notice_smpp_host="127.0.0.1",
        notice_smpp_port=port,
        notice_smpp_system_id="tawasol",
        notice_smpp_timeout_s=timeout_s,
        notice_sms_sender="Tawasol",
    )


@pytest.fixture
def admin() -> Iterator[list[tuple[TestClient, Brain]]]:
    """Admin API clients opened by the test, closed with their brains at the end."""
    opened: list[tuple[TestClient, Brain]] = []
    yield opened
    for client, brain in opened:
        client.__exit__(None, None, None)
        brain.close()


def open_admin(brain: Brain, opened: list[tuple[TestClient, Brain]]) -> TestClient:
    client = TestClient(create_app(brain), raise_server_exceptions=False)
    opened.append((client, brain))
    client.__enter__()
    client.headers.update(AUTH)
    return client


def new_subscriber(client: TestClient, locale: str, phone: str) -> int:
    answer = client.post(
        f"{ADMIN}/subscribers",
        json={
            "name": f"Abonné {locale}",
            "email": f"{locale}@example.org",
            "phone": phone,
            "locale": locale,
            "time_zone": "Europe/Paris",
            "sip_username": f"codes-{locale}",
            "password": f"codes-{locale}-pass-2026",
            "plan_code": "maroc-illimite-mois",
        },
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def register(client: TestClient, subscriber_id: int, number: str) -> dict:  # type: ignore[type-arg]
    answer = client.post(f"{ADMIN}/subscribers/{subscriber_id}/caller-ids", json={"number": number})
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def verify(client: TestClient, subscriber_id: int, number: str, code: str) -> dict:  # type: ignore[type-arg]
    answer = client.post(
        f"{ADMIN}/subscribers/{subscriber_id}/caller-ids/{number}/verify", json={"code": code}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_given_an_smsc_when_a_caller_id_is_registered_then_its_code_arrives_in_the_subscribers_language(  # noqa: E501
    tmp_path: Path,
    smsc: Smsc,  # noqa: F811
    admin: list[tuple[TestClient, Brain]],
) -> None:
    client = open_admin(smpp_brain(tmp_path, smsc.port), admin)
    numbers = {"ar": "+33612340001", "fr": "+33612340002", "en": "+33612340003"}
    for index, (locale, number) in enumerate(numbers.items()):
        subscriber_id = new_subscriber(client, locale, f"+3361234100{index}")
        issued = register(client, subscriber_id, number)
        assert (issued["code_sent"], issued["code"], issued["verified"]) == (True, None, False)
        (message,) = [m for m in smsc.messages if m.destination == number.lstrip("+")]
        template, data_coding = EXPECTED[locale]
        found = re.search(r"\d{6}", message.text)
        assert found, message.text
        code = found[0]
        assert (message.source, message.text, message.data_coding, len(message.parts)) == (
            "Tawasol",
            template.format(code=code),
            data_coding,
            1,
        )
        assert verify(client, subscriber_id, number, code)["verified"] is True
    assert smsc.per_destination() == {number.lstrip("+"): 1 for number in numbers.values()}


@contextmanager
def smsc_that_does_not_take(world: str) -> Iterator[int]:
    """The port of an SMSC that is down, refuses the bind, refuses every message, or accepts
    the connection (the kernel's backlog) and never says a word."""
    if world == "down":
        yield free_port()  # nobody listens there
    elif world == "refuses_bind":
        with BindRefusingSmsc() as refusing:
            yield refusing.port
    elif world == "refuses_message":
        with Smsc() as refusing_message:
            refusing_message.refuse_status = 0x00000045  # ESME_RSUBMITFAIL (SMPP 3.4 §5.1.3)
            yield refusing_message.port
            assert refusing_message.messages == []
    else:
        with socket.create_server(("127.0.0.1", 0)) as silent:
            silent.listen(4)
            yield int(silent.getsockname()[1])


@pytest.mark.parametrize("world", ["down", "refuses_bind", "refuses_message", "silent"])
def test_given_an_smsc_that_does_not_take_the_sms_then_the_operator_gets_the_code_and_it_verifies(
    tmp_path: Path, world: str, admin: list[tuple[TestClient, Brain]]
) -> None:
    with smsc_that_does_not_take(world) as port:
        client = open_admin(smpp_brain(tmp_path, port, timeout_s=0.5), admin)
        subscriber_id = new_subscriber(client, "fr", "+33612341000")
        issued = register(client, subscriber_id, "06 12 34 00 09")
        assert issued["code_sent"] is False and issued["verified"] is False
        assert re.fullmatch(r"\d{6}", issued["code"] or ""), issued
        pending = client.get(f"{ADMIN}/subscribers/{subscriber_id}/caller-ids")
        assert [(c["number"], c["verified"]) for c in pending.json()] == [("+33612340009", False)]
        assert verify(client, subscriber_id, "+33612340009", issued["code"])["verified"] is True


def test_given_an_smsc_the_cli_sends_the_code_by_sms_and_does_not_print_it(
    tmp_path: Path,
    smsc: Smsc,  # noqa: F811
) -> None:
    runner = CliRunner(
        env={
            "COLUMNS": "220",
            "TAWASOL_ADMIN_TOKEN": "",
            "TAWASOL_DEMO": "false",
            "TAWASOL_NOTICE_SMPP_HOST": "127.0.0.1",
            "TAWASOL_NOTICE_SMPP_PORT": str(smsc.port),
            "TAWASOL_NOTICE_SMPP_SYSTEM_ID": "tawasol",
        }
    )

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--data-dir", str(tmp_path), *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("init")
    run("seed", "--sample", "--demo")
    added = run("direct", "caller-id", "add", "amina", "06 12 34 00 42")
    assert "+33612340042: verification code sent by SMS" in added
    (text,) = smsc.texts_to("+33612340042")
    code = re.search(r"\d{6}", text)
    assert code and code[0] not in added, (text, added)
    run("direct", "caller-id", "verify", "amina", "+33612340042", code[0])
    listed = run("direct", "caller-id", "list", "amina").split()
    assert listed == ["+33612340042", "verified"]
