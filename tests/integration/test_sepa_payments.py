"""SEPA Direct Debit end to end on a real database, through the payments service as billing
uses it: mandates, the billing run's charges collected by pre-notified debits, the pain.008
file checked against the ISO 20022 schema sepaxml ships, the bank's camt.054 returns applied
to the ledger and to dunning, refunds by pain.001 (issue 15, must-show 2 and 5 for SEPA)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import xmlschema
from schwifty import IBAN
from sqlalchemy import create_engine, text

from support.operator import a_new_subscriber, a_plan
from tawasol.adapters.payments.sepa_xml import read_returns
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.composition import Billing, build_billing
from tawasol.config import Settings
from tawasol.domain.errors import Conflict, InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.notices import NoticeOccasion
from tawasol.domain.payments.dunning import DunningStatus
from tawasol.domain.payments.outcomes import FailureCode, PaymentStatus
from tawasol.domain.payments.sepa import MandateState
from tawasol.domain.payments.sepa_collections import CollectionState
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.payments.sepa import SepaDirectDebit

SCHEMAS = Path(sepaxml.__file__).parent / "schemas"
CREDITOR = {
    "payments_sepa_creditor_id": "DE98ZZZ09999999999",
    "payments_sepa_creditor_name": "Tawasol SAS",
    "payments_sepa_creditor_iban": "FR7630006000011234567890189",
    "payments_sepa_creditor_bic": "AGRIFRPP",
}
BILLING = {
    "billing_entity_code": "FR1",
    "billing_entity_name": "Tawasol SAS",
    "billing_entity_address": "1 rue de la Paix, 75002 Paris",
    "billing_entity_siren": "123456789",
    "billing_entity_vat_number": "FR12123456789",
    "billing_vat_rates": "FR=20",
}
PERIOD_START = datetime(2026, 12, 1, tzinfo=UTC)
RUN_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # each first invoice: December


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    url: str
    billing: Billing
    clock: Clock
    store: SqlStore

    @property
    def sepa(self) -> SepaDirectDebit:
        provider = self.billing.payment_service.provider("sepa")
        return provider.service  # type: ignore[attr-defined,no-any-return]


def an_iban(number: int) -> str:
    return str(IBAN.generate("DE", bank_code="37040044", account_code=f"{number:010d}").compact)


@pytest.fixture
def world_of(tmp_path: Path) -> Iterator[object]:
    worlds: list[World] = []

    def build(subscribers: int) -> World:
        url = sqlite_url_for(tmp_path)
        migrate(url)
        store = SqlStore.from_url(url)
        store.save_plan(a_plan(time_windows=()))  # maroc-illimite, 9.99 EUR a month
        for number in range(subscribers):
            subscriber = store.add_subscriber(
                a_new_subscriber(f"user{number}", locale=("fr", "ar", "en")[number % 3])
            )
            store.add_subscription(
                subscriber_id=subscriber.id,
                plan_code="maroc-illimite",
                status=SubscriptionStatus.ACTIVE,
                period_start=PERIOD_START,
                period_end=datetime(2027, 1, 1, tzinfo=UTC),
            )
        clock = Clock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
        settings = Settings(data_dir=tmp_path, **BILLING, **CREDITOR)
        billing = build_billing(settings, store=store, clock=clock)
        world = World(url, billing, clock, store)
        worlds.append(world)
        return world

    yield build
    for world in worlds:
        world.store.close()


def sign_mandates(world: World, count: int) -> None:
    for number in range(count):
        subscriber = world.store.find_subscriber(f"user{number}")
        assert subscriber is not None
        world.billing.payment_service.set_up_method(
            subscriber_id=subscriber.id,
            provider="sepa",
            details={
                "iban": an_iban(number + 1),
                "holder": f"Titulaire {number}",
                "signed_on": "2026-11-15",
            },
        )


def ledger(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT kind, amount, idempotency_key FROM ledger_entries ORDER BY id")
        ).all()
    engine.dispose()
    return [(str(kind), str(amount), str(key)) for kind, amount, key in rows]


def camt054(returns: list[tuple[str, str, str]], *, booked: str = "2026-12-18") -> bytes:
    """A bank-to-customer debit notification with one returned debit per (end-to-end id,
    mandate, reason code), 9.99 EUR each, as French banks send them."""
    entries = "".join(
        f"""
      <Ntry>
        <Amt Ccy="EUR">9.99</Amt><CdtDbtInd>DBIT</CdtDbtInd><RvslInd>true</RvslInd>
        <Sts>BOOK</Sts><BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{booked}</Dt></ValDt>
        <AcctSvcrRef>BANKREF{index}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RDDT</Cd><SubFmlyCd>UPDD</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>{end_to_end}</EndToEndId><MndtId>{mandate}</MndtId></Refs>
          <AmtDtls><TxAmt><Amt Ccy="EUR">9.99</Amt></TxAmt></AmtDtls>
          <RtrInf><Rsn><Cd>{code}</Cd></Rsn></RtrInf>
        </TxDtls></NtryDtls>
      </Ntry>"""
        for index, (end_to_end, mandate, code) in enumerate(returns)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr><MsgId>CAMT054-1</MsgId><CreDtTm>{booked}T07:00:00</CreDtTm></GrpHdr>
    <Ntfctn>
      <Id>NTF-1</Id><CreDtTm>{booked}T07:00:00</CreDtTm>
      <Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>{entries}
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>""".encode()


SUBSCRIBERS = 1000


def test_given_1000_mandates_then_one_valid_pain008_and_returns_reach_ledger_and_dunning(
    world_of,
):
    world: World = world_of(SUBSCRIBERS)
    sign_mandates(world, SUBSCRIBERS)

    world.clock.now = RUN_AT
    summary = world.billing.run.run(at=RUN_AT)
    assert summary.errors == []
    assert summary.renewals + summary.first_invoices >= SUBSCRIBERS

    sepa = world.sepa
    collections = sepa.store.collections()
    assert len(collections) == SUBSCRIBERS
    assert {c.due_on for c in collections} == {date(2026, 12, 15)}  # 1 Dec + 14, a Tuesday
    # Every pre-notification was queued for its subscriber, in their language, 14 days or
    # more before the collection date it announces.
    for collection in collections:
        (notice,) = sepa.store.prenotifications(collection_id=collection.id)
        assert notice.queued_at is not None
        assert (collection.due_on - notice.queued_at.date()).days >= 14
    engine = create_engine(world.url)
    with engine.connect() as connection:
        told = connection.execute(
            text("SELECT locale, subject FROM notices WHERE occasion = :o"),
            {"o": NoticeOccasion.SEPA_PRENOTIFICATION.value},
        ).all()
    engine.dispose()
    assert len(told) == SUBSCRIBERS
    assert {locale for locale, _ in told} == {"fr", "ar", "en"}
    assert all("2026" in subject for _, subject in told)

    # Before the date announced nothing is collected.
    world.clock.now = datetime(2026, 12, 11, 10, 0, tzinfo=UTC)
    early = sepa.batch(collection_date=date(2026, 12, 14))
    assert early.batch is None and early.included == 0

    world.clock.now = datetime(2026, 12, 14, 10, 0, tzinfo=UTC)
    outcome = sepa.batch(collection_date=date(2026, 12, 15))
    assert outcome.batch is not None
    assert outcome.included == SUBSCRIBERS and outcome.batch.transactions == SUBSCRIBERS
    assert outcome.batch.control_sum == Money(Decimal("9.99") * SUBSCRIBERS, "EUR")
    schema = xmlschema.XMLSchema(str(SCHEMAS / "pain.008.001.02.xsd"))
    schema.validate(outcome.batch.xml)  # raises on any violation
    document = schema.to_dict(outcome.batch.xml)
    (block,) = document["CstmrDrctDbtInitn"]["PmtInf"]
    assert block["PmtTpInf"]["SeqTp"] == "FRST"
    assert block["ReqdColltnDt"] == "2026-12-15"
    assert block["CdtrSchmeId"]["Id"]["PrvtId"]["Othr"][0]["Id"] == "DE98ZZZ09999999999"
    assert len(block["DrctDbtTxInf"]) == SUBSCRIBERS

    # Running the batch again writes nothing more; every debit is paid in the ledger once.
    again = sepa.batch(collection_date=date(2026, 12, 15))
    assert again.batch is None and again.included == 0
    entries = ledger(world.url)
    assert sum(1 for kind, _, _ in entries if kind == "payment") == SUBSCRIBERS
    for number in (0, 1, 2):
        subscriber = world.store.find_subscriber(f"user{number}")
        assert subscriber is not None
        account = world.billing.store.account(subscriber_id=subscriber.id, currency="EUR")
        assert account.balance == Money(Decimal("0.00"), "EUR")

    # The bank returns three debits: AM04, AC04, MD01.
    first = sorted(collections, key=lambda c: c.id)[:3]
    mandates = {c.id: c.mandate_reference for c in first}
    returns_file = camt054(
        [
            (c.end_to_end_id(1), mandates[c.id], code)
            for c, code in zip(first, ("AM04", "AC04", "MD01"), strict=True)
        ]
    )
    world.clock.now = datetime(2026, 12, 18, 9, 0, tzinfo=UTC)
    applied = sepa.import_returns(read_returns(returns_file))
    assert applied.applied == 3 and applied.by_reason == {"AM04": 1, "AC04": 1, "MD01": 1}
    after_returns = ledger(world.url)
    chargebacks = [(amount, key) for kind, amount, key in after_returns if kind == "chargeback"]
    assert len(chargebacks) == 3 and {amount for amount, _ in chargebacks} == {"9.99"}
    payments = world.billing.payment_service
    by_collection = {}
    for collection in first:
        owner = collection.subscriber_id
        account = world.billing.store.account(subscriber_id=owner, currency="EUR")
        assert account.balance == Money(Decimal("9.99"), "EUR")  # owed again
        (payment,) = payments.store.payments(subscriber_id=owner)
        by_collection[collection.id] = payment
    am04, ac04, _ = (by_collection[c.id] for c in first)
    case_am04 = payments.case(am04.reference)
    case_ac04 = payments.case(ac04.reference)
    assert case_am04.status is DunningStatus.OPEN
    assert case_am04.last_failure is FailureCode.INSUFFICIENT_FUNDS
    assert case_ac04.status is DunningStatus.OPEN
    assert case_ac04.last_failure is FailureCode.ACCOUNT_CLOSED
    assert sepa.store.mandate(mandates[first[2].id]).state is MandateState.CLOSED
    assert "MD01" in sepa.store.mandate(mandates[first[2].id]).state_reason
    assert sepa.store.mandate(mandates[first[1].id]).state is MandateState.CLOSED  # AC04
    assert sepa.store.mandate(mandates[first[0].id]).state is MandateState.ACTIVE  # AM04
    assert {c.state for c in sepa.store.collections() if c.id in mandates} == {
        CollectionState.RETURNED
    }

    # The same file imported again changes nothing.
    replay = sepa.import_returns(read_returns(returns_file))
    assert replay.applied == 0 and replay.already == 3
    assert ledger(world.url) == after_returns

    # Dunning presents the AM04 debit once more, pre-notified again; the AC04 one has no
    # usable mandate left, so the subscriber is asked for another way to pay.
    world.clock.now = datetime(2026, 12, 19, 10, 0, tzinfo=UTC)
    payments.run_dunning(at=world.clock.now)
    represented = sepa.store.collections(subscriber_id=first[0].subscriber_id)
    assert [c.state for c in represented] == [CollectionState.RETURNED, CollectionState.SCHEDULED]
    assert represented[1].due_on >= date(2027, 1, 2)  # 14 days after 19 December, TARGET2
    assert sepa.store.collections(subscriber_id=first[1].subscriber_id)[-1].state is (
        CollectionState.RETURNED
    )
    assert payments.case(ac04.reference).status is DunningStatus.OPEN
    # A second dunning round while the re-presentation waits for its date debits nothing more.
    world.clock.now = datetime(2026, 12, 22, 10, 0, tzinfo=UTC)
    payments.run_dunning(at=world.clock.now)
    assert len(sepa.store.collections(subscriber_id=first[0].subscriber_id)) == 2
    assert payments.case(am04.reference).status is DunningStatus.OPEN

    # The re-presentation goes in the next file, as a recurrent debit.
    world.clock.now = datetime(2027, 1, 3, 10, 0, tzinfo=UTC)
    second = sepa.batch(collection_date=represented[1].due_on)
    assert second.batch is not None and second.included == 1
    schema.validate(second.batch.xml)
    assert "<SeqTp>RCUR</SeqTp>" in second.batch.xml
    assert payments.case(am04.reference).status is DunningStatus.RECOVERED
    assert world.billing.store.account(
        subscriber_id=first[0].subscriber_id, currency="EUR"
    ).balance == Money(Decimal("0.00"), "EUR")


def test_given_bad_input_then_a_clear_error_and_nothing_stored_or_debited(world_of):
    world: World = world_of(3)
    sepa = world.sepa
    payments = world.billing.payment_service
    user0 = world.store.find_subscriber("user0")
    assert user0 is not None

    with pytest.raises(InvalidInput, match="check digits are wrong"):
        payments.set_up_method(
            subscriber_id=user0.id,
            provider="sepa",
            details={
                "iban": "DE89370400440532013001",  # the last digit mistyped
                "holder": "Amina Benali",
                "signed_on": "2026-11-15",
            },
        )
    with pytest.raises(InvalidInput, match="Morocco"):
        payments.set_up_method(
            subscriber_id=user0.id,
            provider="sepa",
            details={
                "iban": "MA64011519000001205000534921",
                "holder": "Amina Benali",
                "signed_on": "2026-11-15",
            },
        )
    assert sepa.mandates() == [] and payments.methods(user0.id) == []

    sign_mandates(world, 2)
    (mandate,) = sepa.mandates(subscriber_id=user0.id)
    revoked, cancelled = sepa.revoke_mandate(mandate.reference, reason="asked by phone")
    assert revoked.state is MandateState.REVOKED and cancelled == 0
    (method,) = payments.methods(user0.id)
    assert method.status.value == "revoked"  # the payments service learnt it
    with pytest.raises(Conflict, match="revoked"):
        sepa.schedule(
            mandate_reference=mandate.reference,
            amount=Money(Decimal("9.99"), "EUR"),
            reference="direct",
        )

    world.clock.now = RUN_AT
    world.billing.run.run(at=RUN_AT)
    assert sepa.store.collections(subscriber_id=user0.id) == []  # nothing under a revoked mandate
    (case,) = payments.dunning.cases(subscriber_id=user0.id)
    assert case.last_failure is FailureCode.METHOD_REVOKED

    # user1's debit is collected, then a refund above what was paid is refused.
    user1 = world.store.find_subscriber("user1")
    assert user1 is not None
    world.clock.now = datetime(2026, 12, 14, 10, 0, tzinfo=UTC)
    assert sepa.batch(collection_date=date(2026, 12, 15)).included == 1
    (paid,) = payments.store.payments(subscriber_id=user1.id)
    assert paid.status is PaymentStatus.PAID
    before = ledger(world.url)
    with pytest.raises(InvalidInput, match="more than"):
        payments.refund(
            payment_id=paid.id, amount=Money(Decimal("10.00"), "EUR"), reference="too-much"
        )
    assert ledger(world.url) == before and sepa.store.transfers() == []

    # A partial refund goes back by credit transfer, once.
    refund = payments.refund(
        payment_id=paid.id, amount=Money(Decimal("4.00"), "EUR"), reference="goodwill"
    )
    again = payments.refund(
        payment_id=paid.id, amount=Money(Decimal("4.00"), "EUR"), reference="goodwill"
    )
    assert again.id == refund.id and len(sepa.store.transfers()) == 1
    world.clock.now = datetime(2026, 12, 16, 10, 0, tzinfo=UTC)
    transfer_file = sepa.transfers(execution_date=date(2026, 12, 17))
    assert transfer_file is not None and transfer_file.transactions == 1
    xmlschema.XMLSchema(str(SCHEMAS / "pain.001.001.03.xsd")).validate(transfer_file.xml)
    assert an_iban(2) in transfer_file.xml  # back to the account debited
    assert sepa.transfers(execution_date=date(2026, 12, 17)) is None
    refunds = [(amount, key) for kind, amount, key in ledger(world.url) if kind == "refund"]
    assert [amount for amount, _ in refunds] == ["4.00"]

    with pytest.raises(InvalidInput, match="not a TARGET2 business day"):
        sepa.batch(collection_date=date(2026, 12, 25))
    with pytest.raises(InvalidInput, match=r"neither camt\.054"):
        read_returns(b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.008.001.02'/>")
    with pytest.raises(InvalidInput, match="well-formed"):
        read_returns(b"<Document><unclosed></Document>")
