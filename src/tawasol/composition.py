"""Wire the adapters into the services, once, from Settings (the CLI's composition root)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from tawasol.adapters.security_log import JsonLinesAuthFailureLog
from tawasol.adapters.sip.render import NONCE_LIFETIME_S, RING_TIMEOUT_MS
from tawasol.adapters.store import SqlStore
from tawasol.config import Settings, private_directory
from tawasol.domain.carrier_health import CapacityPolicy, ProbeThresholds
from tawasol.services.authorize_call import CallAuthorizer
from tawasol.services.carrier_monitor import CarrierMonitor
from tawasol.services.catalog import CatalogService
from tawasol.services.record_call_events import CallEventRecorder
from tawasol.services.record_refusals import RefusalRecorder
from tawasol.services.verify_credentials import CredentialVerifier, DecisionGrants

if TYPE_CHECKING:
    from tawasol.adapters.store.billing_sql import SqlBillingStore
    from tawasol.services.billing.run import BillingRun
    from tawasol.services.ports import OutageHistory


def system_clock() -> datetime:
    return datetime.now(UTC)


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

    def close(self) -> None:
        self.refusals.close()
        self.store.close()


def build_brain(settings: Settings, *, clock: Callable[[], datetime] = system_clock) -> Brain:
    settings.check()
    private_directory(settings.data_dir)
    store = SqlStore.from_url(settings.resolved_database_url)
    refusals = RefusalRecorder(store=store)
    authorizer = CallAuthorizer(
        store=store,
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
        on_refused=refusals.refused,
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
    )
    return Brain(
        settings=settings,
        store=store,
        authorizer=authorizer,
        recorder=CallEventRecorder(store=store, authorizer=authorizer, listeners=[monitor]),
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
    )


def build_billing_run(
    settings: Settings, *, outages: OutageHistory | None = None
) -> tuple[BillingRun, SqlBillingStore]:
    """The billing run on the settings' database. `outages` is the incidents store's history
    (until it is wired here, none: renewals are never deferred and no credit is due)."""
    from tawasol.adapters.store.billing_memory import InMemoryOutageHistory
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
    url = settings.resolved_database_url
    catalog = SqlStore.from_url(url)
    billing_store = SqlBillingStore(catalog.engine)
    run = BillingRun(
        store=billing_store,
        plans=lambda: {plan.code: plan for plan in catalog.list_plans()},
        outages=outages or InMemoryOutageHistory(()),
        settings=BillingSettings(entity, VatTable.parse(settings.billing_vat_rates), policy),
    )
    return run, billing_store
