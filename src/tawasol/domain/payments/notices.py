"""What a subscriber is told about their payments, in their language (fr, ar, en).

Four occasions (`NoticeOccasion.PAYMENT_*`): the bank asks them to authenticate a payment
(3-D Secure) with the link to do it; a renewal was refused, with the reason, the next try and
the link to update the payment method; calls are suspended after the grace period; calls work
again once paid. The texts name the amount with its currency and never a card number.
"""

from __future__ import annotations

from datetime import datetime

from tawasol.domain.money import Money
from tawasol.domain.notices import NoticeOccasion, html_document
from tawasol.domain.payments.outcomes import FailureCode

_TEXTS: dict[NoticeOccasion, dict[str, tuple[str, str]]] = {
    NoticeOccasion.PAYMENT_ACTION: {
        "fr": (
            "Confirmez votre paiement de {amount}",
            "Bonjour {name},\n\nVotre banque demande que vous confirmiez le paiement de "
            "{amount} pour votre forfait. Confirmez-le ici : {link}",
        ),
        "ar": (
            "أكد دفعتك بمبلغ {amount}",
            "مرحبا {name}،\n\nيطلب منك بنكك تأكيد دفع {amount} لباقتك. أكده هنا: {link}",
        ),
        "en": (
            "Confirm your payment of {amount}",
            "Hello {name},\n\nYour bank asks you to confirm the payment of {amount} for your "
            "plan. Confirm it here: {link}",
        ),
    },
    NoticeOccasion.PAYMENT_FAILED: {
        "fr": (
            "Paiement de {amount} refusé",
            "Bonjour {name},\n\nLe paiement de {amount} pour votre forfait a été refusé "
            "({reason}). {retry}Pour éviter une interruption, mettez à jour votre moyen de "
            "paiement : {link}",
        ),
        "ar": (
            "رُفض دفع {amount}",
            "مرحبا {name}،\n\nرُفض دفع {amount} لباقتك ({reason}). {retry}لتجنب انقطاع الخدمة، "
            "حدّث وسيلة الدفع: {link}",
        ),
        "en": (
            "Payment of {amount} refused",
            "Hello {name},\n\nThe payment of {amount} for your plan was refused ({reason}). "
            "{retry}To avoid an interruption, update your payment method: {link}",
        ),
    },
    NoticeOccasion.PAYMENT_SUSPENDED: {
        "fr": (
            "Appels suspendus : {amount} impayés",
            "Bonjour {name},\n\n{amount} restent dus pour votre forfait : vos appels sont "
            "suspendus. Ils reprennent dès le paiement : {link}",
        ),
        "ar": (
            "المكالمات موقوفة: {amount} غير مدفوعة",
            "مرحبا {name}،\n\nما زال مبلغ {amount} مستحقا لباقتك: مكالماتك موقوفة. تعود فور "
            "الدفع: {link}",
        ),
        "en": (
            "Calls suspended: {amount} unpaid",
            "Hello {name},\n\n{amount} is still due for your plan: your calls are suspended. "
            "They resume as soon as it is paid: {link}",
        ),
    },
    NoticeOccasion.PAYMENT_RESUMED: {
        "fr": (
            "Paiement reçu, appels rétablis",
            "Bonjour {name},\n\nNous avons reçu {amount}. Vos appels fonctionnent de nouveau.",
        ),
        "ar": (
            "تم استلام الدفع وعادت المكالمات",
            "مرحبا {name}،\n\nاستلمنا {amount}. عادت مكالماتك تعمل.",
        ),
        "en": (
            "Payment received, calls restored",
            "Hello {name},\n\nWe received {amount}. Your calls work again.",
        ),
    },
}

_REASONS: dict[str, dict[FailureCode | None, str]] = {
    "fr": {
        FailureCode.INSUFFICIENT_FUNDS: "provision insuffisante",
        FailureCode.EXPIRED_CARD: "carte expirée",
        FailureCode.AUTHENTICATION_FAILED: "paiement non confirmé",
        None: "refus de la banque",
    },
    "ar": {
        FailureCode.INSUFFICIENT_FUNDS: "رصيد غير كاف",
        FailureCode.EXPIRED_CARD: "بطاقة منتهية الصلاحية",
        FailureCode.AUTHENTICATION_FAILED: "لم يتم تأكيد الدفع",
        None: "رفض البنك",
    },
    "en": {
        FailureCode.INSUFFICIENT_FUNDS: "insufficient funds",
        FailureCode.EXPIRED_CARD: "expired card",
        FailureCode.AUTHENTICATION_FAILED: "payment not confirmed",
        None: "refused by the bank",
    },
}

_RETRY = {
    "fr": "Nous réessaierons le {date}. ",
    "ar": "سنعيد المحاولة يوم {date}. ",
    "en": "We will try again on {date}. ",
}


def language_of(locale: str) -> str:
    language = locale.split("_", maxsplit=1)[0].split("-", maxsplit=1)[0].lower()
    return language if language in _RETRY else "en"


def render_payment_notice(
    *,
    occasion: NoticeOccasion,
    name: str,
    locale: str,
    amount: Money,
    link: str,
    failure: FailureCode | None = None,
    next_try: datetime | None = None,
) -> tuple[str, str, str, str]:
    """(language, subject, plain text, HTML) of a payment notice; KeyError for an occasion
    that is not about payments."""
    language = language_of(locale)
    subject_template, body_template = _TEXTS[occasion][language]
    reasons = _REASONS[language]
    values = {
        "name": name,
        "amount": str(amount),
        "link": link,
        "reason": reasons.get(failure, reasons[None]),
        "retry": _RETRY[language].format(date=next_try.date().isoformat()) if next_try else "",
    }
    subject = subject_template.format(**values)
    text = body_template.format(**values)
    return language, subject, text, html_document(language, subject, text)
