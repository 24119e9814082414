"""Wire the adapters into the services, once, from Settings (the CLI's composition root)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from tawasol.adapters.clock import system_clock
from tawasol.adapters.notify.email import EmailChannel, SmtpRelay
from tawasol.adapters.notify.smpp import SmppAccount, SmppChannel, SmsProvider
from tawasol.adapters.notify.sms_codes import SmsCodeSender
from tawasol.adapters.notify.webhook import WebhookChannel
from tawasol.adapters.security_log import JsonLinesAuthFailureLog
from tawasol.adapters.sip.render import NONCE_LIFETIME_S, RING_TIMEOUT_MS
from tawasol.adapters.store import SqlIncidentStore, SqlStore
from tawasol.adapters.store.direct_numbers_sql import SqlDirectNumberStore
from tawasol.adapters.store.notices_sql import SqlNoticeOutbox
from tawasol.config import Settings, private_directory
from tawasol.domain.calls import CallRecord
from tawasol.domain.carrier_health import CapacityPolicy, ProbeThresholds
from tawasol.domain.decision import CallRequest, Decision
from tawasol.domain.incidents import Incident
from tawasol.domain.notices import Channel, DeliveryReceipt
from tawasol.domain.payments.methods import Payer
from tawasol.domain.subscribers import Subscriber
from tawasol.services.alerts import AlertService
from tawasol.services.authorize_call import CallAuthorizer
from tawasol.services.carrier_monitor import CarrierMonitor
from tawasol.services.catalog import CatalogService
from tawasol.services.direct_numbers import (
    Catalog,
    DirectNumberService,
    DirectNumberSettings,
    OperatorRelay,
    VerificationCodeSender,
)
from tawasol.services.incidents import IncidentService
from tawasol.services.live_counters import InProcessLiveCounters
from tawasol.services.notices import NoticeChannel, NoticeSender, NoticeService
from tawasol.services.ports import CallStore, CarrierRuntimeStore
from tawasol.services.ports.live_counters import LiveCounters
from tawasol.services.record_call_events import CallEventRecorder
from tawasol.services.record_refusals import RefusalRecorder
from tawasol.services.sales_guard import SalesGuard
from tawasol.services.verify_credentials import CredentialVerifier, DecisionGrants

if TYPE_CHECKING:
    from tawasol.adapters.payments.paypal import PayPalProvider
    from tawasol.adapters.store.billing_sql import SqlBillingStore
    from tawasol.services.billing.lifecycle import SubscriptionLifecycle
    from tawasol.services.billing.payments import ManualPayments
    from tawasol.services.billing.reports import BillingReports
    from tawasol.services.billing.run import BillingRun
    from tawasol.services.payments.sepa import SepaDirectDebit
    from tawasol.services.payments.service import PaymentService
    from tawasol.services.ports import OutageHistory


@dataclass
class Brain:
    """The brain's services, wired to one store."""

    settings: Settings
    store: SqlStore
    authorizer: CallAuthorizer
    recorder: CallEventRecorder
    catalog: CatalogService
    monitor: CarrierMonitor
    clock: Callable[[], datetime]
    credentials: CredentialVerifier
    grants: DecisionGrants
    refusals: RefusalRecorder
    incidents: IncidentService
    notices: Notices
    sales_guard: SalesGuard
    direct_numbers: DirectNumberService
    live_counters: LiveCounters
    _billing: Billing | None = None

    @property
    def billing(self) -> Billing:
        """Billing's services on the brain's database, built on first use. Raises
        InvalidInput/InvalidConfiguration (422 through the API's error table) while the
        issuing entity or the VAT table is not set up."""
        if self._billing is None:
            self._billing = build_billing(self.settings, store=self.store, clock=self.clock)
        return self._billing

    @property
    def payments(self) -> PaymentService:
        """Payments (methods, collections, refunds, provider events, dunning) on billing's
        ledger: raises like `billing` while billing is not set up."""
        return self.billing.payment_service

    @property
    def calls(self) -> CallStore:
        """The call detail records (the store, seen through its `CallStore` port)."""
        return self.store

    @property
    def carrier_events(self) -> CarrierRuntimeStore:
        """Carrier state changes and operators' caps (the store's `CarrierRuntimeStore`)."""
        return self.store

    def close(self) -> None:
        self.refusals.close()
        self.store.close()
        if self._billing is not None:
            self._billing.close()
        self.live_counters.close()


def build_live_counters(settings: Settings) -> LiveCounters:
    """The live counters the settings choose: in this process (embedded mode) or in Redis,
    shared by every brain (scaled mode; raises `Unavailable` when Redis does not answer)."""
    if settings.live_counters == "redis":
        from tawasol.adapters.redis import connect_live_counters

        return connect_live_counters(
            settings.redis_url,
            prefix=settings.redis_key_prefix,
            timeout_s=settings.redis_timeout_ms / 1000,
        )
    return InProcessLiveCounters()


def build_brain(settings: Settings, *, clock: Callable[[], datetime] = system_clock) -> Brain:
    settings.check()
    private_directory(settings.data_dir)
    counters = build_live_counters(settings)  # before the store: Redis down fails at once
    store = SqlStore.from_url(settings.resolved_database_url, clock=clock)
    refusals = RefusalRecorder(store=store)
    incident_store = SqlIncidentStore(store.engine)
    notices = build_notices(
        settings,
        store,
        clock,
        open_incidents=lambda: incident_store.list_incidents(open_only=True, limit=1000),
    )
    incidents = IncidentService(
        store=incident_store,
        clock=clock,
        settings=settings.detection_settings(),
        on_change=notices.on_incident_change,
        on_tick=notices.service.on_tick,
    )

    def on_refused(request: CallRequest, decision: Decision, now: datetime) -> None:
        refusals.refused(request, decision, now)
        incidents.on_refused(request, decision, now)

    authorizer = CallAuthorizer(
        catalog=store,
        calls=store,
        clock=clock,
        realm=settings.sip_realm,
        fake_ha1_secret=secrets.token_bytes(32),
        refresh_interval=timedelta(milliseconds=settings.catalog_refresh_ms),
        route_timeout_ms=settings.route_timeout_ms,
        platform_max_call_duration=timedelta(seconds=settings.platform_max_call_duration_s),
        default_region=settings.default_region,
        ring_timeout_ms=RING_TIMEOUT_MS,
        ring_hold_max=timedelta(seconds=settings.call_ring_hold_max_s),
        hold_margin=timedelta(seconds=settings.call_hold_margin_s),
        unlisted_number_countries=settings.unlisted_number_country_set,
        on_refused=on_refused,
        counters=counters,
    )
    monitor = CarrierMonitor(
        store=store,
        authorizer=authorizer,
        clock=clock,
        thresholds=ProbeThresholds(
            down_after=settings.probe_down_after, up_after=settings.probe_up_after
        ),
        capacity_policy=CapacityPolicy(
            raise_after=timedelta(seconds=settings.capacity_raise_after_s),
            step=settings.capacity_raise_step,
            evidence=settings.capacity_evidence,
            evidence_window=timedelta(seconds=settings.capacity_evidence_window_s),
        ),
        ner_threshold=settings.quality_ner_threshold,
        min_attempts=settings.quality_min_attempts,
        quality_weighted_routing=settings.routing_strategy == "quality_weighted",
        on_event=incidents.on_carrier_event,
    )
    direct_numbers = build_direct_numbers(
        settings, store, authorizer, clock, on_refused=refusals.refused_record
    )
    return Brain(
        settings=settings,
        store=store,
        authorizer=authorizer,
        recorder=CallEventRecorder(
            store=store,
            authorizer=authorizer,
            listeners=[monitor, incidents],
            inbound_trunks=direct_numbers.trunks_by_code,
        ),
        catalog=CatalogService(store=store, authorizer=authorizer, clock=clock),
        monitor=monitor,
        clock=clock,
        credentials=CredentialVerifier(
            realm=settings.sip_realm,
            clock=clock,
            nonce_lifetime=timedelta(seconds=NONCE_LIFETIME_S),
            report_after=settings.sip_auth_failures,
            failure_window=timedelta(seconds=settings.sip_auth_window_s),
            report_log=JsonLinesAuthFailureLog(
                settings.data_dir / "security" / "auth-failures.jsonl"
            ),
        ),
        grants=DecisionGrants(
            key=settings.resolved_grant_key(),
            clock=clock,
            # a call's events may come as late as its longest duration, plus a spool backlog
            remember_for=timedelta(seconds=settings.platform_max_call_duration_s, hours=1),
        ),
        refusals=refusals,
        incidents=incidents,
        notices=notices,
        sales_guard=SalesGuard(incidents=incident_store, plans=store.list_plans),
        live_counters=counters,
        direct_numbers=direct_numbers,
    )


def build_direct_numbers(
    settings: Settings,
    store: SqlStore,
    catalog: Catalog,
    clock: Callable[[], datetime],
    *,
    on_refused: Callable[[CallRecord], None] | None = None,
) -> DirectNumberService:
    """Direct numbers on the store's database. Verification codes go by SMS through the
    configured SMSC (`SmsCodeSender`); without one, or when it does not take the SMS, the
    CLI and the admin API show the code for the operator to pass on (`OperatorRelay`)."""
    sender: VerificationCodeSender = (
        SmsCodeSender(smpp_account(settings)) if settings.notice_smpp_host else OperatorRelay()
    )
    return DirectNumberService(
        store=SqlDirectNumberStore(store.engine),
        catalog=catalog,
        clock=clock,
        new_code=lambda: f"{secrets.randbelow(1_000_000):06d}",
        code_key=settings.resolved_grant_key() + b"/caller-id-codes",
        sender=sender,
        settings=DirectNumberSettings(
            quarantine=timedelta(days=settings.direct_number_quarantine_days),
            pool_alert_below=settings.direct_number_pool_alert_below,
        ),
        on_refused=on_refused,
    )


def smpp_account(settings: Settings) -> SmppAccount:
    """The operator's SMSC account (TAWASOL_NOTICE_SMPP_*), for notices and codes alike."""
    return SmppAccount(
        host=settings.notice_smpp_host,
        port=settings.notice_smpp_port,
        system_id=settings.notice_smpp_system_id,
        password=settings.notice_smpp_password.get_secret_value(),
        system_type=settings.notice_smpp_system_type,
        source_addr=settings.notice_sms_sender,
        timeout_s=settings.notice_smpp_timeout_s,
    )


@dataclass
class Notices:
    """The notices' outbox, the service that fills it, and the sender that empties it.
    `sms` sends any text to any number through the configured SMSC (None without one), for
    other uses than incident notices (e.g. verification codes)."""

    outbox: SqlNoticeOutbox
    service: NoticeService
    alerts: AlertService
    sender: NoticeSender
    sms: SmsProvider | None = None

    def on_incident_change(self, before: Incident | None, after: Incident) -> None:
        self.alerts.on_incident_change(before, after)
        self.service.on_incident_change(before, after)


def build_notices(
    settings: Settings,
    store: SqlStore,
    clock: Callable[[], datetime],
    *,
    open_incidents: Callable[[], Iterable[Incident]] | None = None,
) -> Notices:
    outbox = SqlNoticeOutbox(store.engine)
    policy = settings.notice_policy()
    channels: dict[Channel, NoticeChannel] = {}
    if settings.notice_smtp_host:
        channels[Channel.EMAIL] = EmailChannel(
            SmtpRelay(
                host=settings.notice_smtp_host,
                port=settings.notice_smtp_port,
                sender=settings.notice_smtp_sender,
                username=settings.notice_smtp_username or None,
                password=settings.notice_smtp_password.get_secret_value() or None,
                start_tls=settings.notice_smtp_starttls,
                timeout_s=settings.notice_smtp_timeout_s,
            )
        )
    sender: NoticeSender | None = None

    async def on_receipt(receipt: DeliveryReceipt) -> None:
        if sender is not None:
            await sender.on_receipt(receipt)

    if settings.notice_smpp_host:
        channels[Channel.SMS] = SmppChannel(smpp_account(settings), on_receipt=on_receipt)
    mail_domain = settings.notice_smtp_sender.rpartition("@")[2] or settings.sip_realm
    service = NoticeService(
        outbox=outbox,
        affected=outbox,
        channels=channels,
        clock=clock,
        lookback=timedelta(days=settings.notice_lookback_days),
        mail_domain=mail_domain,
        policy=policy,
        open_incidents=open_incidents,
    )
    alerts = AlertService(
        outbox=outbox,
        clock=clock,
        email=settings.alert_email if Channel.EMAIL in channels else "",
        webhook_url=settings.alert_webhook_url,
        mail_domain=mail_domain,
        policy=policy,
    )
    sending = dict(channels)
    if settings.alert_webhook_url:
        sending[Channel.WEBHOOK] = WebhookChannel(
            secret=settings.alert_webhook_secret.get_secret_value().encode()
        )
    sender = NoticeSender(
        outbox=outbox,
        channels=sending,
        clock=clock,
        retry=settings.retry_policy(),
        rate_per_s=settings.notice_rate_per_s,
        channel_rates={Channel.SMS: settings.notice_sms_rate_per_s},
    )
    sms = channels.get(Channel.SMS)
    return Notices(
        outbox=outbox,
        service=service,
        alerts=alerts,
        sender=sender,
        sms=sms if isinstance(sms, SmppChannel) else None,
    )


def build_billing_run(
    settings: Settings,
    *,
    outages: OutageHistory | None = None,
    store: SqlStore | None = None,
    clock: Callable[[], datetime] = system_clock,
) -> tuple[BillingRun, SqlBillingStore]:
    """The billing run on the settings' database (on `store`'s engine when given), handing
    every charge to the payments service (`build_payments`). `outages` defaults to the
    incidents store's customer-facing outage periods (`SqlIncidentStore`, the `OutageHistory`
    contract)."""
    from tawasol.adapters.store.billing_sql import SqlBillingStore
    from tawasol.domain.billing.documents import IssuingEntity
    from tawasol.domain.billing.outage_credits import CreditPolicy
    from tawasol.domain.billing.vat import VatTable
    from tawasol.services.billing.run import BillingRun, BillingSettings

    entity = IssuingEntity(
        code=settings.billing_entity_code,
        name=settings.billing_entity_name,
        address=settings.billing_entity_address,
        siren=settings.billing_entity_siren,
        vat_number=settings.billing_entity_vat_number,
        number_prefix=settings.billing_number_prefix,
    )
    policy = CreditPolicy(
        minimum_unit=timedelta(hours=settings.billing_credit_unit_hours),
        partial_factor=Decimal(settings.billing_partial_outage_factor),
        threshold=timedelta(hours=settings.billing_credit_threshold_hours),
        renewal_deferral_after=timedelta(hours=settings.billing_renewal_deferral_hours),
    )
    catalog = store or SqlStore.from_url(settings.resolved_database_url)
    billing_store = SqlBillingStore(catalog.engine)
    run = BillingRun(
        store=billing_store,
        plans=lambda: {plan.code: plan for plan in catalog.list_plans()},
        outages=outages or SqlIncidentStore(catalog.engine),
        settings=BillingSettings(entity, VatTable.parse(settings.billing_vat_rates), policy),
        payments=build_payments(settings, catalog=catalog, billing=billing_store, clock=clock),
    )
    return run, billing_store


def build_payments(
    settings: Settings,
    *,
    catalog: SqlStore,
    billing: SqlBillingStore,
    clock: Callable[[], datetime] = system_clock,
) -> PaymentService:
    """Payments on the catalog's database: the manual method always, cards through Stripe
    once `TAWASOL_STRIPE_SECRET_KEY` is set; notices through the notices outbox on the
    channels configured; no debit or dunning while a subscriber's plan sells a destination in
    a customer-facing outage (the sales guard's question)."""
    from tawasol.adapters.payments.sepa import SepaProvider
    from tawasol.adapters.store.payments_sql import SqlPaymentStore
    from tawasol.services.payments.manual import ManualProvider
    from tawasol.services.payments.notices import OutboxPaymentNotices
    from tawasol.services.payments.ports import PaymentProvider
    from tawasol.services.payments.service import PaymentService, PaymentSettings

    providers: dict[str, PaymentProvider] = {"manual": ManualProvider()}
    if settings.stripe_secret_key.get_secret_value():
        from tawasol.adapters.payments.stripe_cards import StripeCards

        providers["stripe"] = StripeCards(
            secret_key=settings.stripe_secret_key.get_secret_value(),
            webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
            return_url=settings.payments_return_url,
            api_base=settings.stripe_api_base,
            timeout_s=settings.stripe_timeout_s,
            clock=clock,
        )
    guard = SalesGuard(incidents=SqlIncidentStore(catalog.engine), plans=catalog.list_plans)

    def payer(subscriber_id: int) -> Payer:
        return payer_of(catalog.get_subscriber(subscriber_id))

    def held(subscriber_id: int) -> bool:
        plans = {plan.code: plan for plan in catalog.list_plans()}
        return any(
            guard.blocking(plans[subscription.plan_code])
            for subscription in catalog.list_subscriptions(subscriber_id=subscriber_id)
            if subscription.status.current and subscription.plan_code in plans
        )

    channels = [
        channel
        for channel, configured in (
            (Channel.EMAIL, settings.notice_smtp_host),
            (Channel.SMS, settings.notice_smpp_host),
        )
        if configured
    ]
    sepa = build_sepa(settings, catalog=catalog, billing=billing, clock=clock, channels=channels)
    if sepa is not None:
        providers["sepa"] = SepaProvider(sepa)
    paypal = build_paypal(settings)
    if paypal is not None:
        providers["paypal"] = paypal
    payment_store = SqlPaymentStore(catalog.engine)
    service = PaymentService(
        providers=providers,
        store=payment_store,
        events=payment_store,
        dunning=payment_store,
        billing=billing,
        payers=payer,
        held=held,
        notices=OutboxPaymentNotices(
            outbox=SqlNoticeOutbox(catalog.engine),
            channels=channels,
            mail_domain=settings.notice_smtp_sender.rpartition("@")[2] or settings.sip_realm,
        ),
        clock=clock,
        settings=PaymentSettings(
            schedule=settings.dunning_schedule(), update_url=settings.payments_update_url
        ),
    )
    if sepa is not None:
        sepa.report_to(service)
    return service


@dataclass
class Billing:
    """Billing's services on one database: the run, the lifecycle commands, manual payments,
    the payments service (cards, dunning, provider events) and the store (ledger, documents)
    they share. `close()` releases the database."""

    run: BillingRun
    store: SqlBillingStore
    lifecycle: SubscriptionLifecycle
    payments: ManualPayments
    payment_service: PaymentService
    reports: BillingReports
    owns_engine: bool = True  # False: the brain's store's engine, closed with the brain

    def close(self) -> None:
        if self.owns_engine:
            self.store.close()


def build_billing(
    settings: Settings,
    *,
    outages: OutageHistory | None = None,
    store: SqlStore | None = None,
    clock: Callable[[], datetime] = system_clock,
) -> Billing:
    """Billing's services from the settings (`build_billing_run` plus the lifecycle commands
    and manual payments). Raises InvalidInput/InvalidConfiguration when the issuing entity or
    the VAT table is not set up."""
    from tawasol.adapters.store.billing_reports_sql import SqlReportQueries
    from tawasol.domain.billing.lifecycle import RefundPolicy
    from tawasol.services.billing.lifecycle import SubscriptionLifecycle
    from tawasol.services.billing.payments import ManualPayments
    from tawasol.services.billing.reports import BillingReports

    catalog = store or SqlStore.from_url(settings.resolved_database_url)
    run, billing_store = build_billing_run(settings, outages=outages, store=catalog, clock=clock)
    policy = RefundPolicy(
        refund_customer_cancellation=settings.billing_refund_customer_cancellation
    )
    return Billing(
        run=run,
        store=billing_store,
        lifecycle=SubscriptionLifecycle(store=billing_store, run=run, refund_policy=policy),
        payments=ManualPayments(store=billing_store),
        payment_service=build_payments(
            settings, catalog=catalog, billing=billing_store, clock=clock
        ),
        reports=BillingReports(
            queries=SqlReportQueries(billing_store.engine), vat=run.settings.vat
        ),
        owns_engine=store is None,
    )


def payer_of(subscriber: Subscriber) -> Payer:
    """Who pays, as the payment providers and their notices need them."""
    return Payer(
        subscriber_id=subscriber.id,
        name=subscriber.name,
        email=subscriber.email,
        phone=subscriber.phone,
        locale=subscriber.locale,
        country=subscriber.country or "",
    )


def build_sepa(
    settings: Settings,
    *,
    catalog: SqlStore,
    billing: SqlBillingStore,
    clock: Callable[[], datetime] = system_clock,
    channels: Sequence[Channel] = (Channel.EMAIL,),
) -> SepaDirectDebit | None:
    """SEPA Direct Debit once its creditor is set (`payments_sepa_*`), None before. Its
    pre-notifications go to the notices outbox on `channels`; amounts are checked against the
    ledger before each batch. Raises InvalidInput when the creditor settings are wrong."""
    from tawasol.adapters.payments.sepa_xml import SepaXmlFiles
    from tawasol.adapters.store.sepa_sql import SqlSepaStore
    from tawasol.services.payments.notices import OutboxPaymentNotices
    from tawasol.services.payments.sepa import SepaDirectDebit

    creditor = settings.sepa_creditor()
    if creditor is None:
        return None
    return SepaDirectDebit(
        store=SqlSepaStore(catalog.engine),
        files=SepaXmlFiles(),
        notices=OutboxPaymentNotices(
            outbox=SqlNoticeOutbox(catalog.engine),
            # A debit is announced by email even before the operator configures a relay:
            # the notice waits in the outbox (docs/payments.md).
            channels=channels or (Channel.EMAIL,),
            mail_domain=settings.notice_smtp_sender.rpartition("@")[2] or settings.sip_realm,
        ),
        payers=lambda subscriber_id: payer_of(catalog.get_subscriber(subscriber_id)),
        creditor=creditor,
        clock=clock,
        prenotification_days=settings.payments_sepa_prenotification_days,
        owed=lambda subscriber_id, currency: (
            billing.account(subscriber_id=subscriber_id, currency=currency).balance
        ),
    )


def build_paypal(settings: Settings) -> PayPalProvider | None:
    """The PayPal provider from the settings (`payments_paypal_*`), None when not set up."""
    from tawasol.adapters.payments.paypal import PayPalProvider, PayPalSettings

    if not settings.payments_paypal_client_id:
        return None
    return PayPalProvider(
        PayPalSettings(
            client_id=settings.payments_paypal_client_id,
            client_secret=settings.payments_paypal_client_secret.get_secret_value(),
            webhook_id=settings.payments_paypal_webhook_id,
            return_url=settings.payments_paypal_return_url,
            cancel_url=settings.payments_paypal_cancel_url,
            base_url=settings.payments_paypal_base_url.rstrip("/"),
        )
    )
