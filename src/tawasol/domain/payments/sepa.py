"""SEPA Direct Debit (SDD Core): the operator's creditor identifier, the subscriber's mandate
and bank account, the collection calendar.

A *mandate* is the subscriber's written authorisation for the operator (the *creditor*,
known to every bank by its *creditor identifier*) to debit their bank account: it has a
unique *mandate reference* chosen by the operator, a signature date, the account (IBAN, BIC
when known, holder's name) and the period of *pre-notification* agreed (14 calendar days
unless the mandate says less: EPC SDD Core Rulebook PT-04.03). A mandate is *active*,
*revoked* (by the subscriber or the operator), *closed* (the bank said it is not valid or the
account is closed) or *expired*: unused for 36 months after its last collection
(Rulebook §4.5, PT-04.?: "36 months after the last collection"), or after its signature when
never used.

The first collection under a mandate is sent with sequence type FRST, the following ones RCUR
(pain.008 `SeqTp`). Collections fall on TARGET2 business days (every day but Saturday, Sunday,
1 January, Good Friday, Easter Monday, 1 May, 25 and 26 December: the ECB's calendar, from the
`holidays` package's XECB market).

Text sent to the bank must use SEPA's character set (EPC217-08): Latin letters, digits, space
and / - ? : ( ) . , ' +; identifiers (the mandate reference, the end-to-end id) do not use
space, do not start or end with "/" and do not contain "//". Accents are taken off (é -> e);
any other character is refused with a message naming it, never passed through (the XML writer
would pass "&" or "_" to a bank that rejects the whole file).
"""

from __future__ import annotations

import calendar
import enum
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

import holidays
import pycountry
from schwifty import BIC, IBAN
from schwifty.exceptions import (
    InvalidBBANChecksum,
    InvalidChecksumDigits,
    InvalidCountryCode,
    InvalidLength,
    SchwiftyException,
)
from schwifty.registry import get_iban_spec

from tawasol.domain.errors import Conflict, InvalidInput

__all__ = [
    "MANDATE_LIFETIME_MONTHS",
    "BankAccount",
    "CreditorIdentifier",
    "Mandate",
    "MandateState",
    "SequenceType",
    "add_months",
    "collection_date",
    "is_target_day",
    "next_target_day",
    "sepa_identifier",
    "sepa_text",
]

# EPC SDD Core Rulebook §4.5 (PT-04.?): a mandate unused for 36 months expires.
MANDATE_LIFETIME_MONTHS = 36
# EPC SDD Core Rulebook PT-04.03: the pre-notification reaches the debtor 14 calendar days
# before the debit unless the creditor and the debtor agreed another period in the mandate.
DEFAULT_PRENOTIFICATION_DAYS = 14

_SEPA_CHARACTERS = "/-?:().,'+ "
_SEPA_TEXT = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]*")
_SEPA_IDENTIFIER = re.compile(r"[A-Za-z0-9/\-?:().,'+]*")


def _without_accents(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def sepa_text(value: str, *, field: str, max_length: int) -> str:
    """`value` in SEPA's character set (accents taken off, spaces collapsed), at most
    `max_length` characters. Raises InvalidInput naming the characters SEPA refuses (EPC217-08
    §1.4: a bank rejects a file that holds one)."""
    text = " ".join(_without_accents(value).split())
    if not text:
        raise InvalidInput(f"the {field} is empty", field=field)
    if not _SEPA_TEXT.fullmatch(text):
        refused = sorted({c for c in text if not _SEPA_TEXT.fullmatch(c)})
        raise InvalidInput(
            f"the {field} holds characters SEPA refuses ({' '.join(refused)}): use Latin "
            f"letters, digits, spaces and {_SEPA_CHARACTERS.strip()}",
            field=field,
            refused="".join(refused),
        )
    if len(text) > max_length:
        raise InvalidInput(
            f"the {field} is longer than {max_length} characters", field=field, length=len(text)
        )
    return text


def sepa_identifier(value: str, *, field: str, max_length: int = 35) -> str:
    """An identifier sent to the bank (mandate reference, end-to-end id, message id): 1 to
    `max_length` characters of SEPA's set without space, not starting or ending with "/",
    without "//" (EPC217-08 §1.4). Raises InvalidInput."""
    text = value.strip()
    if not text or len(text) > max_length:
        raise InvalidInput(
            f"the {field} must be 1 to {max_length} characters", field=field, value=text[:80]
        )
    if not _SEPA_IDENTIFIER.fullmatch(text):
        refused = sorted({c for c in text if not _SEPA_IDENTIFIER.fullmatch(c)})
        raise InvalidInput(
            f"the {field} holds characters SEPA refuses ({' '.join(refused) or 'space'}): use "
            "Latin letters, digits and / - ? : ( ) . , ' +",
            field=field,
            value=text,
        )
    if text.startswith("/") or text.endswith("/") or "//" in text:
        raise InvalidInput(
            f"the {field} must not start or end with '/' nor contain '//'",
            field=field,
            value=text,
        )
    return text


def _country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return str(country.name) if country is not None else code


@lru_cache(maxsize=64)
def in_sepa_zone(country: str) -> bool:
    """Whether an account of this ISO 3166 country can be debited by SEPA (the EPC's list of
    SEPA scheme countries, as schwifty's registry holds it)."""
    return _sepa_zone_of(country)


def _sepa_zone_of(country: str) -> bool:
    try:
        return bool(get_iban_spec(country).in_sepa_zone)
    except InvalidCountryCode:
        return False


def _mod97_check_digits(text: str) -> int:
    """ISO 7064 MOD 97-10 over letters (A=10 ... Z=35) and digits, as ISO 13616 computes an
    IBAN's check digits."""
    digits = "".join(str(int(c, 36)) for c in text.upper() if c.isalnum())
    return 98 - int(digits) % 97


@dataclass(frozen=True)
class CreditorIdentifier:
    """The operator's SEPA creditor identifier (EPC262-08): country, 2 check digits, a 3-
    character business code (ZZZ when unused) and the national identifier, e.g.
    DE98ZZZ09999999999. The check digits are ISO 13616's (MOD 97-10) over the national
    identifier followed by the country and "00"; the business code is left out."""

    value: str

    @classmethod
    def parse(cls, text: str) -> CreditorIdentifier:
        """Raises InvalidInput for a malformed identifier, wrong check digits or a country
        outside the SEPA zone."""
        value = "".join(text.split()).upper()
        if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}", value):
            raise InvalidInput(
                "a SEPA creditor identifier is a country code, 2 check digits, a 3-character "
                "business code and the national identifier (e.g. DE98ZZZ09999999999)",
                creditor_identifier=text[:40],
            )
        country, check, national = value[:2], int(value[2:4]), value[7:]
        if _mod97_check_digits(national + country + "00") != check:
            raise InvalidInput(
                "the creditor identifier's check digits are wrong (ISO 13616 MOD 97-10): "
                "check it against your bank's letter",
                creditor_identifier=value,
            )
        if not in_sepa_zone(country):
            raise InvalidInput(
                f"a creditor identifier of {_country_name(country)} ({country}) is outside "
                "the SEPA zone",
                creditor_identifier=value,
            )
        return cls(value)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class BankAccount:
    """A bank account SEPA can debit or credit: IBAN in electronic form (no spaces), BIC
    ("" when the subscriber did not give it: not needed inside the EEA since 2016), and the
    holder's name as the bank knows it (SEPA text, at most 70 characters)."""

    iban: str
    bic: str
    holder: str

    @classmethod
    def parse(cls, *, iban: str, holder: str, bic: str = "") -> BankAccount:
        """Check the IBAN with schwifty (ISO 13616 check digits, length and structure of its
        country), its country against the SEPA zone, the BIC when given. Raises InvalidInput
        with what is wrong."""
        compact = "".join(iban.split()).upper()
        if len(compact) < 2 or not compact[:2].isalpha():
            raise InvalidInput("an IBAN starts with its country code", iban=iban[:40])
        country = compact[:2]
        if country in pycountry_codes() and not in_sepa_zone(country):
            raise InvalidInput(
                f"{_country_name(country)} ({country}) is outside the SEPA zone: SEPA Direct "
                "Debit cannot collect from this account; the subscriber can pay by card or "
                "PayPal instead",
                iban=compact,
                country=country,
            )
        try:
            parsed = IBAN(compact)
        except InvalidChecksumDigits as error:
            raise InvalidInput(
                "the IBAN's check digits are wrong (ISO 13616): a digit was probably mistyped",
                iban=compact,
            ) from error
        except InvalidBBANChecksum as error:
            raise InvalidInput(
                "the IBAN's national check digits are wrong: a digit was probably mistyped",
                iban=compact,
            ) from error
        except InvalidLength as error:
            raise InvalidInput(
                f"the IBAN has the wrong length for {_country_name(country)}", iban=compact
            ) from error
        except InvalidCountryCode as error:
            raise InvalidInput(
                f"{country} is not a country with IBANs", iban=compact, country=country
            ) from error
        except SchwiftyException as error:
            raise InvalidInput(f"not a valid IBAN: {error}", iban=compact) from error
        bic_text = "".join(bic.split()).upper()
        if bic_text:
            try:
                bic_text = str(BIC(bic_text).compact)
            except SchwiftyException as error:
                raise InvalidInput(f"not a valid BIC: {error}", bic=bic_text) from error
        return cls(
            iban=str(parsed.compact),
            bic=bic_text,
            holder=sepa_text(holder, field="account holder's name", max_length=70),
        )

    @property
    def masked_iban(self) -> str:
        """The IBAN as shown to people other than the holder: country, check digits and the
        last four characters (FR76 **** 0189)."""
        return f"{self.iban[:4]} **** {self.iban[-4:]}"


@lru_cache(maxsize=1)
def pycountry_codes() -> frozenset[str]:
    return frozenset(str(country.alpha_2) for country in pycountry.countries)


class MandateState(enum.StrEnum):
    """Whether the operator may collect under a mandate."""

    ACTIVE = "active"
    REVOKED = "revoked"  # by the subscriber (through the operator) or the operator
    CLOSED = "closed"  # the bank said so: no valid mandate (MD01), account closed (AC04)
    EXPIRED = "expired"  # 36 months without a collection


class SequenceType(enum.StrEnum):
    """pain.008 `SeqTp`: the first collection under a mandate, or a following one."""

    FIRST = "FRST"
    RECURRENT = "RCUR"


def add_months(day: date, months: int) -> date:
    """`day` + `months` calendar months, the day clamped to the month's end (31 March + 11
    months = 29 February in a leap year)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Mandate:
    """A subscriber's SEPA Direct Debit mandate (see the module docstring). `id` is 0 until
    stored; `last_collection_on` is the collection date of the last collection sent under it;
    `state_reason` says why it is no longer active (e.g. "MD01 returned by the bank")."""

    reference: str
    subscriber_id: int
    account: BankAccount
    signed_on: date
    prenotification_days: int = DEFAULT_PRENOTIFICATION_DAYS
    state: MandateState = MandateState.ACTIVE
    state_changed_on: date | None = None
    state_reason: str = ""
    last_collection_on: date | None = None
    id: int = 0

    def __post_init__(self) -> None:
        sepa_identifier(self.reference, field="mandate reference")
        if not 1 <= self.prenotification_days <= 60:
            raise InvalidInput(
                "the pre-notification period is 1 to 60 calendar days",
                prenotification_days=self.prenotification_days,
            )

    def expires_on(self) -> date:
        """The day it expires if nothing is collected before (36 months after the last
        collection, or after the signature when never used)."""
        return add_months(self.last_collection_on or self.signed_on, MANDATE_LIFETIME_MONTHS)

    def state_on(self, day: date) -> MandateState:
        """Its state on `day`: an active mandate past `expires_on` is expired."""
        if self.state is MandateState.ACTIVE and day >= self.expires_on():
            return MandateState.EXPIRED
        return self.state

    def check_collectable(self, day: date) -> None:
        """Raises Conflict, saying why, unless the operator may collect under it on `day`."""
        state = self.state_on(day)
        if state is MandateState.ACTIVE:
            if day < self.signed_on:
                raise Conflict(
                    f"mandate {self.reference} is signed on {self.signed_on.isoformat()}: "
                    "nothing can be collected before",
                    mandate=self.reference,
                )
            return
        since = {
            MandateState.EXPIRED: self.expires_on(),
        }.get(state, self.state_changed_on)
        because = f" ({self.state_reason})" if self.state_reason else ""
        raise Conflict(
            f"mandate {self.reference} is {state.value}"
            f"{f' since {since.isoformat()}' if since else ''}{because}: nothing can be "
            "collected under it; the subscriber needs a new mandate or another payment method",
            mandate=self.reference,
            state=state.value,
        )

    @property
    def sequence_type(self) -> SequenceType:
        return SequenceType.FIRST if self.last_collection_on is None else SequenceType.RECURRENT

    def ended(self, state: MandateState, *, on: date, reason: str) -> Mandate:
        """This mandate revoked or closed on `on`; Conflict if it is not active any more."""
        if state is MandateState.ACTIVE:
            raise InvalidInput("a mandate ends revoked, closed or expired")
        if self.state is not MandateState.ACTIVE:
            raise Conflict(
                f"mandate {self.reference} is {self.state.value} already",
                mandate=self.reference,
                state=self.state.value,
            )
        return replace(self, state=state, state_changed_on=on, state_reason=reason)


@lru_cache(maxsize=32)
def _target_closing_days(year: int) -> frozenset[date]:
    return frozenset(holidays.financial_holidays("XECB", years=year).keys())


def is_target_day(day: date) -> bool:
    """Whether TARGET2 settles on `day` (Monday to Friday, not an ECB closing day)."""
    return day.weekday() < 5 and day not in _target_closing_days(day.year)


def next_target_day(day: date) -> date:
    """`day` if TARGET2 settles on it, else the next day it does."""
    while not is_target_day(day):
        day += timedelta(days=1)
    return day


def collection_date(*, notified_on: date, prenotification_days: int) -> date:
    """The earliest collection date a pre-notification sent on `notified_on` allows: at least
    `prenotification_days` calendar days later, on a TARGET2 business day."""
    return next_target_day(notified_on + timedelta(days=prenotification_days))
