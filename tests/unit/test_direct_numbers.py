"""Direct numbers (issue 18): the domain's rules and `DirectNumberService` on the in-memory
stores with the sample operator (amina: Maroc illimité; the trunk and pool built here)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from test_services import NOW, Services

from tawasol.adapters.memory.direct_numbers import MemoryDirectNumberStore
from tawasol.adapters.pool_csv import parse_pool_csv
from tawasol.domain.calls import CallEvent, CallEventType, CallRecord, apply_event, new_record
from tawasol.domain.carriers import BillingIncrement, Rate, RateDeck
from tawasol.domain.direct_numbers import (
    InboundRefusal,
    InboundTrunk,
    caller_identity,
    dialled_forms,
    national_format,
    rate_inbound,
)
from tawasol.domain.errors import Conflict, InvalidInput, InvalidNumber
from tawasol.domain.money import Money
from tawasol.services.direct_numbers import (
    DirectNumberService,
    DirectNumberSettings,
    PoolExhausted,
)
from tawasol.services.sample_operator import seed_sample_operator

TRUNK = InboundTrunk(
    code="fr-did",
    name="French DID provider",
    country="FR",
    addresses=("192.0.2.0/28",),
    number_ranges=("3318488",),
    trust_asserted_identity=True,
    rate_deck=RateDeck(
        [
            Rate(
                "336",
                Money(Decimal("0.0120"), "EUR"),
                datetime(2025, 1, 1, tzinfo=UTC),
                BillingIncrement(60, 60),
            )
        ]
    ),
)
AMINA_MOBILE = "+33612345678"


class Codes:
    """The codes the service draws, in order (the real one uses `secrets`)."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def __call__(self) -> str:
        self.issued.append(f"{123450 + len(self.issued):06d}")
        return self.issued[-1]


class World:
    def __init__(self, pool_size: int = 3) -> None:
        self.services = Services()
        seed_sample_operator(self.services.catalog, now=NOW)
        self.refused: list[CallRecord] = []
        self.codes = Codes()
        self.store = MemoryDirectNumberStore()
        self.direct = DirectNumberService(
            store=self.store,
            catalog=self.services.authorizer,
            clock=self.services.clock,
            new_code=self.codes,
            code_key=b"test-key",
            settings=DirectNumberSettings(quarantine=timedelta(days=7), pool_alert_below=2),
            on_refused=self.refused.append,
        )
        self.direct.save_trunk(TRUNK)
        rows = [(n + 2, f"01 84 88 00 {n + 1:02d}", "fr-did") for n in range(pool_size)]
        assert self.direct.import_pool(rows) == pool_size

    def subscriber_id(self, username: str) -> int:
        found = self.services.catalog.find_subscriber(username)
        assert found is not None
        return found.id

    def verified(self, username: str, number: str) -> int:
        subscriber_id = self.subscriber_id(username)
        issued = self.direct.register_caller_id(subscriber_id, number)
        assert issued.code is not None and not issued.sent
        self.direct.verify_caller_id(subscriber_id, number, issued.code)
        return subscriber_id

    def inbound(self, **overrides: str) -> object:
        values = {
            "call_id": "c1",
            "source_ip": "192.0.2.5",
            "dialled": "0184880001",
            "asserted": AMINA_MOBILE,
            "from_user": AMINA_MOBILE,
            "privacy": None,
        }
        values.update(overrides)
        return self.direct.resolve_inbound(**values)  # type: ignore[arg-type]


@pytest.fixture
def world() -> World:
    return World()


# -- the domain -----------------------------------------------------------------------------------
def test_caller_identity_reads_asserted_identity_only_from_a_trusted_trunk() -> None:
    untrusted = InboundTrunk(code="be", name="BE", country="BE", addresses=("192.0.2.9",))
    assert caller_identity(TRUNK, asserted="0612345678", from_user="x", privacy=None).number == (
        AMINA_MOBILE
    )
    # an untrusted trunk: From, whatever the P-Asserted-Identity says
    read = caller_identity(untrusted, asserted="+33612345678", from_user="0470123456", privacy="")
    assert read.number == "+32470123456"
    withheld = caller_identity(TRUNK, asserted=AMINA_MOBILE, from_user=None, privacy="id")
    assert withheld.withheld and withheld.number is None
    anonymous = caller_identity(untrusted, asserted=None, from_user="anonymous", privacy=None)
    assert anonymous.withheld


def test_a_pool_number_is_matched_in_every_form_a_provider_writes_it() -> None:
    forms = dialled_forms("+33184880001")
    assert {"+33184880001", "33184880001", "0033184880001", "0184880001"} <= set(forms)
    assert national_format("+33184880001") == "01 84 88 00 01"


def test_bad_trunk_configuration_is_refused() -> None:
    with pytest.raises(InvalidInput):
        InboundTrunk(code="x", name="x", country="FR", addresses=("not-an-ip",))
    with pytest.raises(InvalidInput):
        InboundTrunk(code="x", name="x", country="XX", addresses=("192.0.2.1",))
    with pytest.raises(InvalidInput):
        InboundTrunk(code="x", name="x", country="FR", addresses=())


def test_inbound_cost_uses_the_trunk_rate_for_the_callers_number_and_increment() -> None:
    record = CallRecord(
        call_id="c",
        started_at=NOW,
        duration_ms=61_000,
        inbound_trunk="fr-did",
        caller_id=AMINA_MOBILE,
        access="direct_number",
    )
    rated = rate_inbound(record, {"fr-did": TRUNK})
    assert rated.inbound_cost == Money(Decimal("0.024000"), "EUR")  # 120 s at 60/60
    assert rate_inbound(rated, {}) == rated  # set once
    landline = CallRecord(call_id="d", started_at=NOW, duration_ms=1000, inbound_trunk="fr-did")
    assert rate_inbound(landline, {"fr-did": TRUNK}).inbound_cost is None


def test_access_path_rides_on_the_events_into_the_record() -> None:
    event = CallEvent(
        call_id="c",
        type=CallEventType.ATTEMPT,
        at=NOW,
        sip_username="amina",
        dialled="+212661234567",
        attempt=1,
        access="direct_number",
        inbound_trunk="fr-did",
        caller_id=AMINA_MOBILE,
    )
    record = apply_event(new_record(event), event)
    assert (record.access, record.inbound_trunk, record.caller_id) == (
        "direct_number",
        "fr-did",
        AMINA_MOBILE,
    )
    softphone = CallEvent(call_id="s", type=CallEventType.ATTEMPT, at=NOW, attempt=1)
    assert new_record(softphone).access == "softphone"


# -- caller IDs -----------------------------------------------------------------------------------
def test_a_caller_id_is_used_only_once_verified_by_its_code(world: World) -> None:
    amina = world.subscriber_id("amina")
    issued = world.direct.register_caller_id(amina, "06 12 34 56 78")
    assert issued.caller_id.number == AMINA_MOBILE and not issued.caller_id.verified
    assert issued.caller_id.code_hash and issued.code not in issued.caller_id.code_hash
    with pytest.raises(InvalidInput):
        world.direct.verify_caller_id(amina, AMINA_MOBILE, "000000")
    assert world.direct.verify_caller_id(amina, AMINA_MOBILE, issued.code or "").verified


def test_a_number_belongs_to_one_subscriber(world: World) -> None:
    world.verified("amina", AMINA_MOBILE)
    with pytest.raises(Conflict):
        world.direct.register_caller_id(world.subscriber_id("youssef"), AMINA_MOBILE)


def test_wrong_codes_run_out_and_expired_codes_are_refused(world: World) -> None:
    amina = world.subscriber_id("amina")
    issued = world.direct.register_caller_id(amina, AMINA_MOBILE)
    for _attempt in range(5):
        with pytest.raises(InvalidInput):
            world.direct.verify_caller_id(amina, AMINA_MOBILE, "999999")
    with pytest.raises(Conflict, match="too many"):
        world.direct.verify_caller_id(amina, AMINA_MOBILE, issued.code or "")
    again = world.direct.register_caller_id(amina, AMINA_MOBILE)  # a new code
    world.services.clock.now = NOW + timedelta(minutes=16)
    with pytest.raises(Conflict, match="expired"):
        world.direct.verify_caller_id(amina, AMINA_MOBILE, again.code or "")


# -- contacts and the pool ------------------------------------------------------------------------
def test_contacts_get_free_numbers_and_a_removed_one_is_quarantined(world: World) -> None:
    amina = world.subscriber_id("amina")
    maman = world.direct.add_contact(amina, name="Maman", number="+212 6 61 23 45 67")
    papa = world.direct.add_contact(amina, name="Papa", number="00212661112233")
    assert (maman.direct_number, papa.direct_number) == ("+33184880001", "+33184880002")
    world.direct.remove_contact(amina, maman.id)
    tante = world.direct.add_contact(amina, name="Tante", number="+212661998877")
    assert tante.direct_number == "+33184880003"  # not Maman's, quarantined
    with pytest.raises(PoolExhausted):
        world.direct.add_contact(amina, name="Oncle", number="+212661998800")
    world.services.clock.now = NOW + timedelta(days=7)
    assert world.direct.add_contact(amina, name="Oncle", number="+212661998800").direct_number == (
        "+33184880001"
    )


def test_a_contact_the_plan_does_not_cover_is_refused(world: World) -> None:
    amina = world.subscriber_id("amina")
    with pytest.raises(InvalidInput, match="not covered"):
        world.direct.add_contact(amina, name="Cousin", number="+221771234567")  # Senegal
    with pytest.raises(InvalidNumber):
        world.direct.add_contact(amina, name="Cousin", number="12")
    assert world.direct.contacts(amina) == []


def test_pool_import_is_all_or_nothing(world: World) -> None:
    before = world.direct.pool()
    world.direct.save_trunk(replace(TRUNK, code="fr-did2"))
    bad_files = [
        "number;trunk\n+33184880010;fr-did\n01 84 88 00 10;fr-did\n",  # a duplicate
        "number;trunk\n+33184880011;fr-did\n+3225550000;fr-did\n",  # Belgium, not FR
        "number;trunk\n+33184880012;fr-did\n+33155550000;fr-did\n",  # outside the ranges
        "number;trunk\n+33184880013;fr-did\n+33184880001;fr-did2\n",  # in under another
        "number;trunk\n+33184880014;nobody\n",  # no such trunk
    ]
    for text in bad_files:
        with pytest.raises(InvalidInput) as refused:
            world.direct.import_pool(parse_pool_csv(text))
        assert refused.value.details["problems"]
        assert world.direct.pool() == before
    with pytest.raises(InvalidInput):
        parse_pool_csv("number;trunk;price\n+33184880015;fr-did;1\n")  # unknown column


def test_importing_a_pool_file_again_adds_only_what_is_new(world: World) -> None:
    again = "number;trunk\n+33184880001;fr-did\n+33184880016;fr-did\n"
    assert world.direct.import_pool(parse_pool_csv(again)) == 1
    assert world.direct.import_pool(parse_pool_csv(again)) == 0
    assert [entry.number for entry in world.direct.pool()][-1] == "+33184880016"


def test_pool_usage_reports_and_alerts(world: World) -> None:
    amina = world.subscriber_id("amina")
    world.direct.add_contact(amina, name="Maman", number="+212661234567")
    world.direct.add_contact(amina, name="Papa", number="+212661112233")
    usage = world.direct.usage()
    assert usage.pool_size == 3
    assert usage.numbers_per_subscriber == {amina: 2}
    assert usage.running_out == {amina: 1} and usage.alert
    assert next(iter(usage.subscribers_per_number.items())) == ("+33184880001", 1)


# -- inbound calls --------------------------------------------------------------------------------
def test_a_verified_caller_to_a_contacts_number_becomes_the_softphone_request(
    world: World,
) -> None:
    amina = world.verified("amina", AMINA_MOBILE)
    world.direct.add_contact(amina, name="Maman", number="+212661234567")
    resolution = world.inbound()
    request = resolution.request  # type: ignore[attr-defined]
    assert request is not None
    assert (request.sip_username, request.dialled, request.access) == (
        "amina",
        "+212661234567",
        "direct_number",
    )
    assert (request.inbound_trunk, request.caller_id) == ("fr-did", AMINA_MOBILE)
    assert world.services.authorizer.authorize(request).decision.allowed
    assert world.refused == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"source_ip": "198.51.100.7"}, InboundRefusal.UNTRUSTED_SOURCE),
        ({"dialled": "0184880099"}, InboundRefusal.NOT_A_POOL_NUMBER),
        ({"privacy": "id"}, InboundRefusal.CALLER_ID_WITHHELD),
        ({"asserted": "+33677777777"}, InboundRefusal.CALLER_ID_UNKNOWN),
        ({"dialled": "+33184880002"}, InboundRefusal.NOT_A_CONTACT),
    ],
)
def test_each_inbound_refusal_has_its_reason_and_is_recorded(
    world: World, overrides: dict[str, str], reason: InboundRefusal
) -> None:
    amina = world.verified("amina", AMINA_MOBILE)
    world.direct.add_contact(amina, name="Maman", number="+212661234567")
    resolution = world.inbound(**overrides)
    assert resolution.request is None  # type: ignore[attr-defined]
    assert [record.refusal_reason for record in world.refused] == [reason.value]
    assert world.refused[0].access == "direct_number"


def test_an_unverified_caller_id_is_refused(world: World) -> None:
    world.direct.register_caller_id(world.subscriber_id("amina"), AMINA_MOBILE)
    world.inbound()
    assert [record.refusal_reason for record in world.refused] == ["caller_id_unverified"]
