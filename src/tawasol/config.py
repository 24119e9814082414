"""One typed Settings object, built once at start-up.

Every setting has a safe default for the embedded mode (one machine, SQLite in `data_dir`) and
can be set from the environment (`TAWASOL_` prefix, e.g. `TAWASOL_DATABASE_URL`) or a `.env`
file. `Settings.check()` refuses contradictory settings with a clear message before anything
starts. See `docs/tawasol.env.example` for an annotated example.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import stat
from datetime import timedelta
from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tawasol.domain.errors import InvalidConfiguration, InvalidInput
from tawasol.domain.incident_detection import DetectionSettings
from tawasol.domain.notices import NoticePolicy, RetryPolicy
from tawasol.domain.payments.dunning import DunningSchedule
from tawasol.domain.payments.sepa import BankAccount, CreditorIdentifier, sepa_text
from tawasol.domain.payments.sepa_collections import Creditor


class Settings(BaseSettings):
    """The brain's and the SIP edge's settings."""

    model_config = SettingsConfigDict(env_prefix="TAWASOL_", env_file=".env", extra="ignore")

    # -- where things live ------------------------------------------------------------------
    data_dir: Path = Field(default=Path("var"), description="SQLite file, run files, spools")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file tawasol.db in data_dir. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )

    # -- the live counters: embedded (one brain) or scaled (brains sharing Redis) ----------
    live_counters: Literal["in_process", "redis"] = Field(
        default="in_process",
        description="in_process: the embedded mode, one brain holds the calls in progress in "
        "its memory; redis: the scaled mode, every brain shares them in Redis at redis_url "
        "(docs/scaling.md)",
    )
    redis_url: str = Field(
        default="",
        max_length=2000,
        description="the live counters' Redis when live_counters=redis: redis://host:6379/0, "
        "rediss:// (TLS) or unix:///path/redis.sock",
    )
    redis_key_prefix: str = Field(
        default="tawasol:{live}",
        pattern=r"^[A-Za-z0-9:_.{}-]{1,100}$",
        description="every key the brains write starts with this; brains of one platform "
        "share it, two platforms on one Redis must not",
    )
    redis_timeout_ms: int = Field(
        default=250,
        ge=10,
        le=5000,
        description="longest wait for Redis per operation; a decision that cannot reach it is "
        "refused (503, fail closed)",
    )

    demo: bool = Field(
        default=False,
        description="demo mode: the sample operator (accounts with published passwords) may be "
        "loaded and run; never on a production platform",
    )

    # -- billing (docs/billing.md) -----------------------------------------------------------
    billing_entity_code: str = Field(
        default="MAIN", pattern=r"^[A-Z0-9]{1,16}$", description="the invoice sequence's name"
    )
    billing_entity_name: str = Field(default="", description="seller's name on invoices")
    billing_entity_address: str = Field(default="", description="seller's address on invoices")
    billing_entity_siren: str = Field(default="", description="seller's SIREN (9 digits)")
    billing_entity_vat_number: str = Field(default="", description="seller's VAT number")
    billing_number_prefix: str = Field(default="F", pattern=r"^[A-Z]{1,4}$")
    billing_vat_rates: str = Field(
        default="",
        description="VAT percent per subscriber country, e.g. FR=20,BE=21,MA=20; a country "
        "missing here cannot be billed",
    )
    billing_credit_unit_hours: int = Field(default=24, ge=1, le=24 * 31)
    billing_partial_outage_factor: str = Field(default="0.5", pattern=r"^(0(\.\d+)?|1(\.0+)?)$")
    billing_credit_threshold_hours: int = Field(default=4, ge=0)
    billing_renewal_deferral_hours: int = Field(default=24, ge=0)
    billing_refund_customer_cancellation: bool = Field(
        default=False,
        description="credit the unused part when a subscriber cancels by plain choice (the law "
        "gives it only for a withdrawal within 14 days, a price change or a long outage)",
    )
    billing_run_interval_s: int = Field(
        default=3600,
        ge=0,
        description="tawasol up runs billing this often once the VAT rates are set; 0: never",
    )

    # -- payments (docs/payments.md) ---------------------------------------------------------
    stripe_secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Stripe secret key (sk_live_... or sk_test_...); empty: no card payments",
    )
    stripe_webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="signing secret of the Stripe webhook endpoint (whsec_...): every event's "
        "Stripe-Signature is checked with it",
    )
    stripe_api_base: str = Field(
        default="",
        description="Stripe API base URL; empty: Stripe's own (tests point it at localstripe)",
    )
    stripe_timeout_s: float = Field(default=20.0, gt=0, le=120)
    payments_return_url: str = Field(
        default="",
        description="where a subscriber lands after authenticating a payment (3-D Secure)",
    )
    payments_update_url: str = Field(
        default="",
        description="the portal page where a subscriber updates their payment method, sent in "
        "dunning notices ({subscriber} is replaced by their id)",
    )
    payments_dunning_retry_days: str = Field(
        default="1,3,5,7",
        pattern=r"^\s*\d+(\s*,\s*\d+)*\s*$",
        description="days after a failed renewal on which the card is tried again",
    )
    payments_dunning_grace_days: int = Field(
        default=7, ge=0, le=90, description="days unpaid after which calls are suspended"
    )
    payments_webhook_body_limit_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=4 << 20,
        description="largest provider webhook body read (Stripe events are a few kB)",
    )

    # -- payments: SEPA Direct Debit and PayPal (docs/payments.md) ------------------------------
    payments_sepa_creditor_id: str = Field(
        default="",
        max_length=35,
        description="the operator's SEPA creditor identifier (e.g. FR72ZZZ123456, from its "
        "bank); empty: SEPA Direct Debit is off",
    )
    payments_sepa_creditor_name: str = Field(
        default="", max_length=70, description="the operator's name in SEPA files"
    )
    payments_sepa_creditor_iban: str = Field(
        default="", max_length=42, description="the account collections are paid into"
    )
    payments_sepa_creditor_bic: str = Field(
        default="", max_length=11, description="that account's BIC (pain.008.001.02 needs it)"
    )
    payments_sepa_prenotification_days: int = Field(
        default=14,
        ge=1,
        le=60,
        description="calendar days between a debit's pre-notification and the debit, unless "
        "a mandate agreed its own (EPC SDD Core Rulebook: 14 unless agreed otherwise)",
    )
    payments_paypal_client_id: str = Field(default="", max_length=200)
    payments_paypal_client_secret: SecretStr = Field(default=SecretStr(""))
    payments_paypal_webhook_id: str = Field(
        default="", max_length=100, description="the webhook's id in PayPal's dashboard"
    )
    payments_paypal_base_url: str = Field(
        default="https://api-m.sandbox.paypal.com",
        max_length=200,
        description="https://api-m.sandbox.paypal.com (sandbox) or https://api-m.paypal.com",
    )
    payments_paypal_return_url: str = Field(
        default="", max_length=500, description="where PayPal sends a subscriber who approved"
    )
    payments_paypal_cancel_url: str = Field(
        default="", max_length=500, description="where PayPal sends one who cancelled"
    )

    # -- the brain's HTTP API ---------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8040, ge=1, le=65535)
    admin_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token for /admin/v1; empty means the admin API is refused",
    )
    edge_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token the SIP edge sends on every /sip/v1 request; empty: one is "
        "generated into data_dir/edge.token (mode 0600) and shared by `tawasol up`'s brain and "
        "edge. Set it explicitly when the edge and the brain do not share a data directory",
    )
    grant_key: SecretStr = Field(
        default=SecretStr(""),
        description="key of the grants that call events must show; empty: data_dir/grant.key",
    )
    admin_body_limit_bytes: int = Field(
        default=1 << 20,
        ge=64 * 1024,
        le=64 << 20,
        description="largest admin request body read (the rate deck upload has its own limit)",
    )
    catalog_refresh_ms: int = Field(
        default=1000, ge=0, le=60_000, description="how often deciders check for catalog changes"
    )

    # -- calls ------------------------------------------------------------------------------
    default_region: str = Field(default="FR", description="where subscribers call from if unknown")
    route_timeout_ms: int = Field(
        default=3000,
        ge=200,
        le=30_000,
        description="no ringing (18x) nor answer from a carrier in this time: next route",
    )
    platform_max_call_duration_s: int = Field(default=4 * 3600, ge=60, le=24 * 3600)
    unlisted_number_countries: str = Field(
        default="",
        description="ISO countries whose libphonenumber metadata misses real ranges, comma "
        "separated (e.g. CI): their possible-but-unlisted fixed/mobile numbers are allowed, "
        "flagged; everywhere else such numbers are refused",
    )
    call_ring_hold_max_s: int = Field(
        default=360,
        ge=10,
        le=3600,
        description="a call slot taken by a decision is freed after the longest ring time "
        "(routes x ring timeout), at most this long, unless the call is answered",
    )
    call_hold_margin_s: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="an answered call's slot lasts until its end event, or its max duration "
        "plus this margin if the end event never comes",
    )
    kamailio_ctl_socket: Path | None = Field(
        default=None,
        description="Kamailio's control socket (binrpc): after a restart the brain lists the "
        "edge's dialogs there (dlg.list) and stops counting calls that are gone. Default: "
        "DATA_DIR/run/kamailio_ctl, where `tawasol up` and deploy/systemd put it",
    )
    edge_reconcile_interval_s: int = Field(
        default=60,
        ge=0,
        le=86_400,
        description="how often the brain compares its calls in progress with the edge's "
        "dialog list (also once at start); 0: never (several edges per brain)",
    )

    # -- supervision (`tawasol up`) ----------------------------------------------------------
    supervisor_max_restarts: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="restarts of one child (brain or Kamailio) within the window before "
        "`tawasol up` gives up and stops",
    )
    supervisor_restart_window_s: int = Field(default=300, ge=10, le=86_400)
    supervisor_first_delay_ms: int = Field(
        default=500,
        ge=0,
        le=60_000,
        description="wait before the first restart of a child; doubles per restart in the "
        "window, at most 30 s",
    )

    # -- carriers: probing, capacity, quality --------------------------------------------------
    probe_interval_s: float = Field(
        default=5.0, ge=0.2, le=300, description="SIP OPTIONS to every gateway this often"
    )
    probe_timeout_ms: int = Field(default=1000, ge=50, le=10_000)
    probe_down_after: int = Field(default=3, ge=1, le=100, description="failures in a row")
    probe_up_after: int = Field(default=2, ge=1, le=100, description="successes in a row")
    capacity_raise_after_s: int = Field(
        default=120, ge=1, description="after learning a lower capacity, try one more channel"
    )
    capacity_raise_step: int = Field(default=1, ge=1, le=1000)
    capacity_evidence: int = Field(
        default=3, ge=1, le=1000, description="congestion answers before capacity is lowered"
    )
    capacity_evidence_window_s: int = Field(
        default=30, ge=1, le=3600, description="... all within this many seconds"
    )
    quality_ner_threshold: float = Field(
        default=0.6, ge=0, le=1, description="below this NER (5 min) a carrier is de-preferred"
    )
    quality_min_attempts: int = Field(default=20, ge=1, description="before NER is trusted")
    routing_strategy: Literal["committed_capacity_first", "quality_weighted"] = (
        "committed_capacity_first"
    )

    # -- incidents (docs/incidents.md explains each default) ---------------------------------
    incident_baseline_failure_share: float = Field(
        default=0.05, gt=0, lt=1, description="network failure share assumed before learning"
    )
    incident_baseline_floor: float = Field(
        default=0.02, gt=0, lt=1, description="the learned baseline never goes below this"
    )
    incident_baseline_ceiling: float = Field(
        default=0.25, gt=0, lt=1, description="the learned baseline never goes above this"
    )
    incident_baseline_smoothing: float = Field(
        default=0.01,
        gt=0,
        le=1,
        description="EWMA weight of each attempt in the learned baseline, in (0, 1]",
    )
    incident_outage_failure_share: float = Field(
        default=0.5, gt=0, lt=1, description="failure share the CUSUM tests for (outage)"
    )
    incident_alarm_threshold: float = Field(
        default=14.0, gt=0, le=1000, description="CUSUM threshold (nats) to raise an alarm"
    )
    incident_recovery_threshold: float = Field(
        default=7.0, gt=0, le=1000, description="CUSUM evidence (nats) of recovery"
    )
    incident_min_failures: int = Field(
        default=6,
        ge=1,
        le=10_000,
        description="failures among the last incident_impact_attempts attempts to alarm",
    )
    incident_impact_attempts: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="recent attempts kept per stream: min_failures and the impact read them",
    )
    incident_min_carriers_for_destination: int = Field(
        default=2,
        ge=1,
        le=100,
        description="carriers that must all fail a destination to call it down",
    )
    incident_recovery_hold_s: int = Field(
        default=300, ge=0, le=86400, description="recovery held this long resolves an incident"
    )
    incident_agreement_window_s: int = Field(
        default=600, ge=1, le=86400, description="carriers compared over this many seconds"
    )
    incident_major_share: float = Field(
        default=0.8, gt=0, le=1, description="failure share at which an outage is major"
    )
    incident_learning_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="baseline learned only below this share of the alarm threshold",
    )
    incident_healthy_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="a carrier delivers a destination below this share of the alarm threshold",
    )
    notice_smtp_host: str = Field(
        default="", description="SMTP relay for email notices (empty: no email notices)"
    )
    notice_smtp_port: int = Field(default=25, ge=1, le=65535)
    notice_smtp_sender: str = Field(default="noreply@tawasol.local", max_length=254)
    notice_smtp_username: str = ""
    notice_smtp_password: SecretStr = SecretStr("")
    notice_smtp_starttls: bool = False
    notice_smtp_timeout_s: float = Field(default=10.0, gt=0, le=120)
    notice_rate_per_s: float = Field(
        default=20.0, gt=0, le=10000, description="emails and webhooks sent per second at most"
    )
    notice_smpp_host: str = Field(
        default="", description="SMSC for SMS notices over SMPP 3.4 (empty: no SMS notices)"
    )
    notice_smpp_port: int = Field(default=2775, ge=1, le=65535)
    notice_smpp_system_id: str = Field(default="", max_length=15)  # SMPP 3.4 §5.2.1
    notice_smpp_password: SecretStr = SecretStr("")
    notice_smpp_system_type: str = Field(default="", max_length=12)
    notice_smpp_timeout_s: float = Field(default=10.0, gt=0, le=120)
    notice_sms_sender: str = Field(
        default="tawasol", description="sender shown: up to 11 letters/digits, or a number"
    )
    notice_sms_rate_per_s: float = Field(
        default=10.0, gt=0, le=10000, description="SMS sent per second at most (SMSC agreed rate)"
    )
    notice_lookback_days: int = Field(
        default=30, ge=1, le=365, description="who called the scope this recently is affected"
    )
    notice_consumer_min_outage_s: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="consumers are told once an incident has been customer-facing this long "
        "(business subscribers at once)",
    )
    notice_update_interval_first_day_s: int = Field(
        default=6 * 3600,
        ge=60,
        le=86400,
        description="at most one update notice per subscriber per window this long during an "
        "incident's first day",
    )
    notice_update_interval_later_s: int = Field(
        default=86400,
        ge=60,
        le=30 * 86400,
        description="... and per window this long after its first day",
    )
    notice_retry_first_delay_s: int = Field(default=30, ge=1, le=86400)
    notice_retry_max_delay_s: int = Field(
        default=3600, ge=1, le=86400, description="the backoff between tries stops growing here"
    )
    direct_number_quarantine_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="a removed contact's direct number is not given to the subscriber again "
        "for this many days",
    )
    direct_number_pool_alert_below: int = Field(
        default=5,
        ge=0,
        le=100_000,
        description="pool usage alert: a subscriber has fewer free pool numbers than this",
    )
    notice_max_attempts: int = Field(default=8, ge=1, le=100)
    notice_lease_s: int = Field(
        default=120, ge=5, le=86400, description="a claimed notice is taken again after this"
    )
    alert_email: str = Field(
        default="", max_length=254, description="on-call address told of every incident"
    )
    alert_webhook_url: str = Field(
        default="", max_length=2000, description="URL POSTed every incident (JSON, signed)"
    )
    alert_webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="HMAC-SHA256 key of X-Tawasol-Signature"
    )
    incident_tick_interval_ms: int = Field(
        default=1000, ge=50, le=60000, description="how often findings become incidents"
    )

    # -- the SIP edge (Kamailio) ------------------------------------------------------------
    sip_realm: str = Field(default="tawasol.local", description="digest realm; part of every HA1")
    sip_listen: str = Field(default="127.0.0.1", description="address Kamailio listens on")
    sip_port: int = Field(default=5060, ge=1, le=65535)
    sip_children: int = Field(default=8, ge=1, le=64)
    sip_retry_after_max_s: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="longest pause a carrier's 503 Retry-After obtains (0: Retry-After ignored)",
    )
    sip_shared_memory_mb: int = Field(default=128, ge=32, le=4096)
    sip_nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="CPU niceness of Kamailio's processes: every new call waits on the brain, "
        "so the brain gets the CPU first when both want it",
    )
    sip_pike_requests: int = Field(
        default=64, ge=4, description="requests per IP per pike interval before a ban"
    )
    sip_pike_interval_s: int = Field(default=2, ge=1)
    sip_ban_s: int = Field(default=300, ge=10, description="how long a flooding IP is banned")
    sip_auth_failures: int = Field(default=3, ge=1, description="failed auths before lock-out")
    sip_auth_window_s: int = Field(default=900, ge=60)
    sip_auth_lockout_s: int = Field(default=900, ge=60)
    sip_max_message_bytes: int = Field(default=8192, ge=1024, le=65535)
    edge_brains: str = Field(
        default="",
        max_length=2000,
        description="the brains this edge asks, in order, comma separated host:port (the "
        "scaled mode: e.g. 10.0.0.11:8040,10.0.0.12:8040); the next is asked when one cannot "
        "be reached. Empty: the brain at api_host:api_port",
    )
    brain_timeout_ms: int = Field(
        default=1000, ge=50, le=10_000, description="edge waits this long for a decision"
    )

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise ValueError("default_region is an ISO 3166 two-letter country code")
        return value.upper()

    @field_validator("unlisted_number_countries")
    @classmethod
    def _countries(cls, value: str) -> str:
        codes = sorted({code.strip().upper() for code in value.split(",") if code.strip()})
        unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(
                f"unlisted_number_countries: {', '.join(unknown)} not ISO 3166 countries "
                "libphonenumber knows (comma-separated two-letter codes, e.g. CI,CM)"
            )
        return ",".join(codes)

    @property
    def unlisted_number_country_set(self) -> frozenset[str]:
        return frozenset(code for code in self.unlisted_number_countries.split(",") if code)

    @property
    def resolved_kamailio_ctl_socket(self) -> Path:
        if self.kamailio_ctl_socket is not None:
            return self.kamailio_ctl_socket
        return (self.data_dir / "run" / "kamailio_ctl").resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tawasol.db').resolve()}"

    def resolved_edge_token(self) -> str:
        """The edge's bearer token: the setting, else `data_dir/edge.token`, created with 32
        random bytes (URL-safe text, mode 0600) the first time. Never a shared default."""
        return self.edge_token.get_secret_value() or _secret_file(self.data_dir / EDGE_TOKEN_FILE)

    def resolved_grant_key(self) -> bytes:
        """The key the brain signs decision grants with (only the brain holds it): the setting,
        else `data_dir/grant.key`, created like the edge token. Brains that share the edges'
        events must share it."""
        key = self.grant_key.get_secret_value() or _secret_file(self.data_dir / GRANT_KEY_FILE)
        return key.encode()

    @property
    def edge_brain_addresses(self) -> list[tuple[str, int]]:
        """`edge_brains` as (host, port) pairs, else [(api_host, api_port)]; raises
        InvalidConfiguration for an entry that is not host:port."""
        if not self.edge_brains.strip():
            return [(self.api_host, self.api_port)]
        addresses = []
        for item in self.edge_brains.split(","):
            host, _, port = item.strip().rpartition(":")
            if not _BRAIN_HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
                raise InvalidConfiguration(
                    f"edge_brains: {item.strip()!r} is not host:port (e.g. 10.0.0.11:8040)"
                )
            addresses.append((host.strip("[]"), int(port)))
        return addresses

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    def check(self) -> None:
        """Refuse contradictory settings with a message that says what to change."""
        problems: list[str] = []
        url = self.resolved_database_url
        if not (url.startswith("sqlite") or url.startswith("postgresql")):
            problems.append("database_url must be a sqlite:/// or postgresql+psycopg:// URL")
        if self.sip_listen and self.sip_port == self.api_port and self.sip_listen == self.api_host:
            problems.append("sip_port and api_port must differ on the same address")
        try:
            ipaddress.ip_address(self.sip_listen)
        except ValueError:
            problems.append(f"sip_listen must be an IP address, not {self.sip_listen!r}")
        if self.route_timeout_ms >= self.platform_max_call_duration_s * 1000:
            problems.append("route_timeout_ms must be far shorter than the max call duration")
        if self.probe_timeout_ms >= self.probe_interval_s * 1000:
            problems.append("probe_timeout_ms must be shorter than probe_interval_s")
        if self.brain_timeout_ms > 5000:
            problems.append("brain_timeout_ms over 5 s would hold every caller: keep it short")
        token = self.edge_token.get_secret_value()
        if token and not _EDGE_TOKEN.fullmatch(token):
            problems.append(
                "edge_token must be 16 or more letters, digits and . _ - + / "
                "(it goes into the rendered Kamailio configuration)"
            )
        if self.notice_smpp_host and not self.notice_smpp_system_id:
            problems.append("notice_smpp_host needs notice_smpp_system_id (the SMSC's account)")
        if not _SMS_SENDER.fullmatch(self.notice_sms_sender):
            problems.append(
                "notice_sms_sender must be 1 to 11 letters, digits, spaces or . - _ "
                "(GSM 03.40 alphanumeric sender), or a number of up to 15 digits"
            )
        problems.extend(self._live_counters_problems(url))
        try:
            if len(self.edge_brain_addresses) > 16:
                problems.append("edge_brains: at most 16 brains per edge")
        except InvalidConfiguration as error:
            problems.append(error.message)
        if self.alert_webhook_url and not self.alert_webhook_secret.get_secret_value():
            problems.append("alert_webhook_url needs alert_webhook_secret (bodies are signed)")
        if self.alert_webhook_url and not self.alert_webhook_url.startswith(
            ("http://", "https://")
        ):
            problems.append("alert_webhook_url must be an http:// or https:// URL")
        if self.stripe_secret_key.get_secret_value() and not (
            self.stripe_webhook_secret.get_secret_value()
        ):
            problems.append(
                "stripe_secret_key needs stripe_webhook_secret: card payments settle through "
                "signed webhooks"
            )
        if self.stripe_secret_key.get_secret_value() and not self.payments_return_url:
            problems.append(
                "stripe_secret_key needs payments_return_url (where 3-D Secure returns)"
            )
        try:
            self.dunning_schedule()
        except InvalidInput as error:
            problems.append(f"payments settings: {error.message}")
        try:
            self.detection_settings()
        except InvalidInput as error:
            problems.append(f"incident settings: {error.message}")
        try:
            self.notice_policy()
            self.retry_policy()
        except InvalidInput as error:
            problems.append(f"notice settings: {error.message}")
        problems.extend(self._payments_problems())
        if problems:
            raise InvalidConfiguration("invalid settings: " + "; ".join(problems))

    def _payments_problems(self) -> list[str]:
        sepa = (
            self.payments_sepa_creditor_id,
            self.payments_sepa_creditor_name,
            self.payments_sepa_creditor_iban,
        )
        problems = []
        if any(sepa) and not all(sepa):
            problems.append(
                "SEPA Direct Debit needs payments_sepa_creditor_id, _creditor_name and "
                "_creditor_iban together"
            )
        elif all(sepa):
            try:
                self.sepa_creditor()
            except InvalidInput as error:
                problems.append(f"SEPA creditor: {error.message}")
        paypal = (
            self.payments_paypal_client_id,
            self.payments_paypal_client_secret.get_secret_value(),
        )
        if any(paypal) and not all(paypal):
            problems.append("PayPal needs payments_paypal_client_id and _client_secret together")
        if all(paypal) and not self.payments_paypal_base_url.startswith(
            ("https://", "http://127.")
        ):
            problems.append("payments_paypal_base_url must be an https:// URL")
        return problems

    def sepa_creditor(self) -> Creditor | None:
        """The operator as SEPA creditor, None when SEPA is not set up; InvalidInput when a
        value is wrong (creditor identifier check digits, IBAN, BIC, name)."""
        if not self.payments_sepa_creditor_id:
            return None
        return Creditor(
            name=sepa_text(self.payments_sepa_creditor_name, field="creditor name", max_length=70),
            account=BankAccount.parse(
                iban=self.payments_sepa_creditor_iban,
                holder=self.payments_sepa_creditor_name,
                bic=self.payments_sepa_creditor_bic,
            ),
            identifier=CreditorIdentifier.parse(self.payments_sepa_creditor_id),
        )

    def _live_counters_problems(self, database_url: str) -> list[str]:
        if self.live_counters == "in_process":
            if self.redis_url:
                return [
                    "redis_url is set but live_counters is in_process: set live_counters=redis "
                    "to share the counters (or remove redis_url)"
                ]
            return []
        problems = []
        if not self.redis_url:
            problems.append("live_counters=redis needs redis_url (e.g. redis://127.0.0.1:6379/0)")
        elif not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            problems.append("redis_url must be a redis://, rediss:// or unix:// URL")
        if database_url.startswith("sqlite"):
            problems.append(
                "live_counters=redis is the scaled mode: its brains share one PostgreSQL "
                "database (database_url=postgresql+psycopg://...), not a SQLite file"
            )
        if self.edge_reconcile_interval_s:
            problems.append(
                "live_counters=redis: set edge_reconcile_interval_s=0 (one edge's dialog list "
                "does not hold the calls of the other edges; expiry heals lost calls)"
            )
        if self.redis_timeout_ms >= self.brain_timeout_ms:
            problems.append("redis_timeout_ms must be shorter than brain_timeout_ms")
        return problems

    def dunning_schedule(self) -> DunningSchedule:
        """The dunning schedule (raises InvalidInput for retry days that are not increasing)."""
        return DunningSchedule.parse(
            self.payments_dunning_retry_days, self.payments_dunning_grace_days
        )

    def detection_settings(self) -> DetectionSettings:
        """The incident detector's thresholds (raises InvalidInput if they contradict)."""
        return DetectionSettings(
            baseline_failure_share=self.incident_baseline_failure_share,
            baseline_floor=self.incident_baseline_floor,
            baseline_ceiling=self.incident_baseline_ceiling,
            baseline_smoothing=self.incident_baseline_smoothing,
            outage_failure_share=self.incident_outage_failure_share,
            alarm_threshold=self.incident_alarm_threshold,
            recovery_threshold=self.incident_recovery_threshold,
            min_failures=self.incident_min_failures,
            recovery_hold=timedelta(seconds=self.incident_recovery_hold_s),
            agreement_window=timedelta(seconds=self.incident_agreement_window_s),
            major_share=self.incident_major_share,
            learning_share=self.incident_learning_share,
            healthy_share=self.incident_healthy_share,
            impact_attempts=self.incident_impact_attempts,
            min_carriers_for_destination=self.incident_min_carriers_for_destination,
        )

    def notice_policy(self) -> NoticePolicy:
        """Who is told of an incident and how often (raises InvalidInput if contradictory)."""
        return NoticePolicy(
            consumer_min_outage=timedelta(seconds=self.notice_consumer_min_outage_s),
            update_interval_first_day=timedelta(seconds=self.notice_update_interval_first_day_s),
            update_interval_later=timedelta(seconds=self.notice_update_interval_later_s),
        )

    def retry_policy(self) -> RetryPolicy:
        """How notices are retried (raises InvalidInput if contradictory)."""
        return RetryPolicy(
            first_delay=timedelta(seconds=self.notice_retry_first_delay_s),
            max_delay=timedelta(seconds=self.notice_retry_max_delay_s),
            max_attempts=self.notice_max_attempts,
            lease=timedelta(seconds=self.notice_lease_s),
        )


EDGE_TOKEN_FILE = "edge.token"
GRANT_KEY_FILE = "grant.key"
_BRAIN_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_EDGE_TOKEN = re.compile(r"[A-Za-z0-9._+/-]{16,512}")
_SMS_SENDER = re.compile(r"[A-Za-z0-9 ._-]{1,11}|\+?[0-9]{1,15}")


def private_directory(path: Path) -> Path:
    """`path` as a directory only its owner can enter (mode 0700), created if absent: the data
    directory holds every subscriber's HA1 (the SQLite database), the edge token and the grant
    key. An existing one this user owns is tightened on start."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = path.stat()
    if status.st_uid == os.geteuid() and stat.S_IMODE(status.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def _secret_file(path: Path) -> str:
    """The secret in `path`, created with 32 random bytes (mode 0600) if the file is absent."""
    try:
        return _read_token(path)
    except FileNotFoundError:
        pass
    private_directory(path.parent)
    try:
        # O_EXCL: a brain and an edge starting together agree on one secret
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return _read_token(path)


def _read_token(path: Path) -> str:
    token = path.read_text(encoding="ascii").strip()
    if len(token) < 16:
        raise InvalidConfiguration(f"{path} holds no usable secret: delete it to get a new one")
    return token
