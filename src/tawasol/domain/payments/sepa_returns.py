"""R-transactions: what the operator does when a bank rejects, returns or refunds a SEPA
direct debit, by ISO 20022 reason code (ExternalReturnReason1Code).

Every R-transaction takes the money back: the payment it names becomes a `chargeback` in the
ledger, keyed by the presentation's end-to-end id, so a file imported twice changes nothing.
Then dunning takes over with the platform's failure code (`FailureCode`), which says whether
presenting again can succeed. What follows, by reason (EPC SDD Core Rulebook §4.6, the EPC's
guidance on reason codes EPC173-14):

- **AM04** insufficient funds: retryable; dunning presents it once more (a new collection,
  pre-notified like the first: SEPA's one re-presentation) and tells the subscriber.
- **AC04** account closed, **AC01** wrong account identifier, **AG01** debit forbidden on the
  account: the mandate cannot be used again (closed); dunning asks for another payment method.
- **MD06** refund requested by the debtor (an authorised debit, within 8 weeks of it): no new
  debit without the subscriber's say; dunning tells them what is owed.
- **MD01** no valid mandate (an unauthorised debit, claimed within 13 months), **MD02** mandate
  data wrong, **MD07** debtor deceased: the mandate is closed; nothing is presented again.
- Any other code: taken back, dunned as a refusal a retry cannot fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tawasol.domain.money import Money
from tawasol.domain.payments.outcomes import FailureCode

__all__ = ["RETURN_REASONS", "ReturnReason", "SepaReturn", "return_reason"]


@dataclass(frozen=True)
class ReturnReason:
    """What a reason code means (`meaning`), the platform's failure code it maps to (which
    dunning reads: insufficient funds is retried once, the others need another payment
    method), and whether the mandate cannot be used again (`close_mandate`)."""

    code: str
    meaning: str
    failure: FailureCode
    close_mandate: bool = False


_F = FailureCode
RETURN_REASONS: dict[str, ReturnReason] = {
    reason.code: reason
    for reason in (
        ReturnReason("AM04", "insufficient funds", _F.INSUFFICIENT_FUNDS),
        ReturnReason("AC04", "account closed", _F.ACCOUNT_CLOSED, close_mandate=True),
        ReturnReason("AC01", "account identifier incorrect", _F.INCORRECT_DETAILS, True),
        ReturnReason("AC06", "account blocked", _F.ACCOUNT_CLOSED),
        ReturnReason("AG01", "direct debit forbidden on this account", _F.ACCOUNT_CLOSED, True),
        ReturnReason("AM05", "duplicate collection", _F.PROVIDER_ERROR),
        ReturnReason("MD01", "no valid mandate", _F.NO_MANDATE, close_mandate=True),
        ReturnReason("MD02", "mandate data missing or incorrect", _F.NO_MANDATE, True),
        ReturnReason("MD06", "refund requested by the debtor", _F.REFUND_REQUESTED),
        ReturnReason("MD07", "debtor deceased", _F.ACCOUNT_CLOSED, close_mandate=True),
        ReturnReason("MS02", "refused by the debtor", _F.REFUND_REQUESTED),
        ReturnReason("MS03", "reason not specified by the bank", _F.CARD_DECLINED),
        ReturnReason("RC01", "bank identifier (BIC) incorrect", _F.INCORRECT_DETAILS),
        ReturnReason("SL01", "creditor blocked by the debtor's bank", _F.REFUND_REQUESTED),
    )
}


def return_reason(code: str) -> ReturnReason:
    """The reason for `code`; an unknown code is taken back and dunned like a refusal that a
    retry cannot fix (`PROVIDER_ERROR` would retry), and its meaning says it is unknown."""
    code = code.strip().upper()
    return RETURN_REASONS.get(code) or ReturnReason(
        code, f"reason code {code} (not known)", FailureCode.REFUND_REQUESTED
    )


@dataclass(frozen=True)
class SepaReturn:
    """One R-transaction read from the bank's file: the collection it names (our end-to-end
    id), the amount taken back, the reason code, the booking date, and the mandate reference
    when the bank repeats it."""

    end_to_end_id: str
    amount: Money
    reason_code: str
    booked_on: date
    mandate_reference: str = ""
    bank_reference: str = ""

    @property
    def reason(self) -> ReturnReason:
        return return_reason(self.reason_code)
