"""localstripe 1.15.10 as the tests run it: `python localstripe_server.py --port N`.

The stock server (`localstripe --port N`) listens on every interface and pickles its state to
/tmp/localstripe.pickle after every write (shared by every localstripe on the machine). This
entry point runs the same aiohttp app, from scratch, on 127.0.0.1 only, keeping its state in
memory, and fills three gaps between localstripe and Stripe that the payment tests need
(docs/payments.md lists them):

1. Stripe sends `setup_intent.succeeded` / `setup_intent.setup_failed` when a SetupIntent is
   confirmed (after 3-D Secure); localstripe sends no SetupIntent event: added.
2. A refused charge's error carries the PaymentIntent and a `decline_code` at Stripe;
   localstripe's carries neither (`card_declined` only): both added.
3. Stripe's 4000002500003155 asks for 3-D Secure when it is saved and then lets off-session
   payments through ("set up for future use"); localstripe asks for it on every payment, like
   4000002760003184 (which asks every time at Stripe too). Off-session payments of a 3155 card
   saved by a SetupIntent go through here, as at Stripe.
4. Stripe's test cards that decline for insufficient funds (4000000000009995) are refused when
   they are saved, at Stripe and in localstripe alike, so no test card can be saved and then
   run out of money. `POST /_config/payment_methods/{pm}/funds` with `available=false` makes
   later charges of that saved card fail with `insufficient_funds` (`available=true` ends it).
"""

from __future__ import annotations

import argparse

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.resources import Charge, Event, PaymentIntent, PaymentMethod, SetupIntent
from localstripe.webhooks import schedule_webhook

_NO_FUNDS: set[str] = set()
_SET_UP: set[str] = set()  # payment methods a SetupIntent saved for off-session use
_OFF_SESSION = [False]  # while a PaymentIntent is created off-session
_SET_UP_ONCE = "4000002500003155"


def _no_disk(self: object) -> None:
    return None


def _charging_is_declined(self: PaymentMethod, _original=PaymentMethod._charging_is_declined):
    return self.id in _NO_FUNDS or _original(self)


def _requires_authentication(
    self: PaymentMethod, _original=PaymentMethod._requires_authentication
) -> bool:
    if _OFF_SESSION[0] and self.id in _SET_UP and getattr(self, "_card_number", "") == _SET_UP_ONCE:
        return False
    return bool(_original(self))


def _create_intent(
    cls, confirm=None, off_session=None, _original=PaymentIntent._api_create.__func__, **data
):
    _OFF_SESSION[0] = str(off_session).lower() == "true"
    try:
        return _original(cls, confirm=confirm, off_session=off_session, **data)
    finally:
        _OFF_SESSION[0] = False


def _set_auth_failure(self: Charge, _original=Charge._set_auth_failure) -> None:
    _original(self)
    if self.payment_method in _NO_FUNDS:
        self._decline_code = "insufficient_funds"
        self.failure_message = "Your card has insufficient funds."


def _raise_failure(self: Charge) -> None:
    contents = {"code": self.failure_code, "charge": self.id}
    decline = getattr(self, "_decline_code", None)
    if decline:
        contents["decline_code"] = decline
    if self.payment_intent:
        contents["payment_intent"] = PaymentIntent._api_retrieve(self.payment_intent)._export()
    raise UserError(402, self.failure_message, contents)


def _last_payment_error(self: PaymentIntent, _original=PaymentIntent.last_payment_error):
    error = _original.fget(self)
    decline = getattr(self.latest_charge, "_decline_code", None)
    if error and decline:
        error = {**error, "decline_code": decline}
    return error


def _status(self: SetupIntent) -> str | None:
    return self.__dict__.get("_status")


def _set_status(self: SetupIntent, value: str) -> None:
    before = self.__dict__.get("_status")
    self.__dict__["_status"] = value
    if value == "succeeded" and before != "succeeded":
        if self.payment_method and self.usage == "off_session":
            _SET_UP.add(self.payment_method)
        schedule_webhook(Event("setup_intent.succeeded", self))
    elif value == "canceled" and before is not None:
        schedule_webhook(Event("setup_intent.setup_failed", self))


async def _funds(request: web.Request) -> web.Response:
    payment_method = request.match_info["id"]
    data = await server.get_post_data(request) or {}
    PaymentMethod._api_retrieve(payment_method)  # 404 if unknown
    if str(data.get("available", "true")).lower() == "false":
        _NO_FUNDS.add(payment_method)
    else:
        _NO_FUNDS.discard(payment_method)
    return web.Response()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    resources.Store.dump_to_disk = _no_disk  # type: ignore[method-assign]
    PaymentMethod._charging_is_declined = _charging_is_declined  # type: ignore[method-assign]
    PaymentMethod._requires_authentication = _requires_authentication  # type: ignore[method-assign]
    PaymentIntent._api_create = classmethod(_create_intent)  # type: ignore[method-assign,assignment]
    Charge._set_auth_failure = _set_auth_failure  # type: ignore[method-assign]
    Charge._raise_failure = _raise_failure  # type: ignore[method-assign]
    PaymentIntent.last_payment_error = property(_last_payment_error)  # type: ignore[assignment]
    # every change of a SetupIntent's status goes through this property: events as Stripe's
    SetupIntent.status = property(_status, _set_status)  # type: ignore[attr-defined]
    server.app.router.add_post("/_config/payment_methods/{id}/funds", _funds)
    web.run_app(server.app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
