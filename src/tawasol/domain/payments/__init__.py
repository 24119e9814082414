"""Payments: how subscribers pay what billing charges them.

- `methods`: a subscriber's payment method (card, SEPA Direct Debit mandate, PayPal vault,
  manual), its provider references and its status; a subscriber has at most one active
  method, the one renewals are charged to.
- `outcomes`: what a charge or a refund came to (paid, requires action with a link, failed with
  a reason code, pending) and the reason codes' meaning for dunning.
- `events`: what a provider tells afterwards (a webhook, a bank's return), in the platform's
  own terms, kept for audit and applied once.
- `dunning`: the schedule of retries and notices after a failed renewal, and suspension after
  the grace period.

Pure rules: no I/O, no clock; money is `Money` (Decimal with a currency).
"""
