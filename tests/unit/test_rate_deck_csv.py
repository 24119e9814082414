"""Rate decks from CSV: what carriers send, every way it goes wrong, and the round trip."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.adapters.rate_deck_csv import MAX_ROWS, parse_rate_deck, rate_deck_to_csv
from tawasol.domain.carriers import BillingIncrement, Rate, RateDeck
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money

JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
HEADER = "prefix,rate,currency,effective_from,increment\n"


def rate(
    prefix: str,
    amount: str,
    effective_from: datetime = JANUARY,
    increment: tuple[int, int] = (60, 60),
    currency: str = "EUR",
) -> Rate:
    return Rate(
        prefix, Money(Decimal(amount), currency), effective_from, BillingIncrement(*increment)
    )


# --- What carriers send ----------------------------------------------------------------------


def test_given_spreadsheet_export_with_every_variation_when_parsed_then_rates_are_exact() -> None:
    text = (
        "\ufeff"  # UTF-8 byte-order mark, as Excel writes it
        "\r\n"  # a blank line before the header
        "Destination;PREFIX; Rate ;Effective_From;Currency;Increment\r\n"
        "Morocco fixed;212;0,0200;2026-01-01;eur;60/60\r\n"
        "Morocco mobile;+2126;0,0780;2026-01-01T00:00:00;EUR;1/1\r\n"
        "\r\n"
        ";;;;;\r\n"  # a blank row as spreadsheets export it
        '"Morocco, Inwi";002127;.0800;2026-02-01T09:30:00+01:00;EUR; 30 / 6 \r\n'
        "Tunisia;216;0.05;2026-01-01T00:00:00Z;EUR;\r\n"
        "Tunisia mobile;2162;1;2026-01-01;EUR;60/1\r\n"
    )

    rates = parse_rate_deck(text)

    assert rates == [
        rate("212", "0.0200"),
        rate("2126", "0.0780", increment=(1, 1)),
        # 09:30 at +01:00 is 08:30 UTC.
        rate("2127", "0.0800", datetime(2026, 2, 1, 8, 30, tzinfo=UTC), (30, 6)),
        rate("216", "0.05"),
        rate("2162", "1", increment=(60, 1)),
    ]
    # Money is never float: the Decimal keeps the carrier's own digits.
    assert str(rates[1].per_minute.amount) == "0.0780"
    assert all(item.effective_from.tzinfo is UTC for item in rates)


def test_given_comma_separated_deck_with_quoted_decimal_comma_when_parsed_then_read() -> None:
    text = (
        "prefix,rate,currency,effective_from\n"
        '212,"0,0780",EUR,2026-01-01\n'
        "213,0.09,EUR,2026-01-01\n"
    )
    assert parse_rate_deck(text) == [rate("212", "0.0780"), rate("213", "0.09")]


def test_given_no_currency_column_when_default_currency_then_used() -> None:
    text = "prefix;rate;effective_from\n212;0,02;2026-01-01\n"
    assert parse_rate_deck(text, default_currency="eur") == [rate("212", "0.02")]


def test_given_empty_currency_cell_when_default_currency_then_used() -> None:
    text = HEADER + "212,0.02,,2026-01-01,\n213,0.09,MAD,2026-01-01,\n"
    assert parse_rate_deck(text, default_currency="EUR") == [
        rate("212", "0.02"),
        rate("213", "0.09", currency="MAD"),
    ]


def test_given_same_rate_twice_when_parsed_then_kept_once() -> None:
    text = HEADER + "212,0.02,EUR,2026-01-01,60/60\n212,0.0200,EUR,2026-01-01T00:00:00Z,\n"
    assert parse_rate_deck(text) == [rate("212", "0.02")]


def test_given_same_prefix_from_two_dates_when_parsed_then_both_kept() -> None:
    text = HEADER + "212,0.02,EUR,2026-01-01,\n212,0.03,EUR,2026-03-01,\n"
    assert parse_rate_deck(text) == [
        rate("212", "0.02"),
        rate("212", "0.03", datetime(2026, 3, 1, tzinfo=UTC)),
    ]


def test_given_header_only_when_parsed_then_no_rates() -> None:
    assert parse_rate_deck(HEADER) == []


def test_max_rows_is_half_a_million() -> None:
    assert MAX_ROWS == 500_000


# --- Every way a deck goes wrong -------------------------------------------------------------

BAD_ROWS = [
    # (what is wrong, the data row, the column named)
    ("letter in prefix", "21a2,0.02,EUR,2026-01-01,", "prefix"),
    ("empty prefix", ",0.02,EUR,2026-01-01,", "prefix"),
    ("only a plus", "+,0.02,EUR,2026-01-01,", "prefix"),
    ("spaces inside prefix", "212 6,0.02,EUR,2026-01-01,", "prefix"),
    ("16 digits", "2126612345678901,0.02,EUR,2026-01-01,", "prefix"),
    ("16 digits after +", "+2126612345678901,0.02,EUR,2026-01-01,", "prefix"),
    ("national prefix", "0612,0.02,EUR,2026-01-01,", "prefix"),
    ("negative rate", "212,-0.02,EUR,2026-01-01,", "rate"),
    ("words for a rate", "212,cheap,EUR,2026-01-01,", "rate"),
    ("exponent", "212,1e5,EUR,2026-01-01,", "rate"),
    ("exponent, upper case", "212,1E-2,EUR,2026-01-01,", "rate"),
    ("not a number", "212,NaN,EUR,2026-01-01,", "rate"),
    ("infinity", "212,Infinity,EUR,2026-01-01,", "rate"),
    ("explicit plus", "212,+0.02,EUR,2026-01-01,", "rate"),
    ("empty rate", "212,,EUR,2026-01-01,", "rate"),
    ("thousands and decimals", '212,"1.234,5",EUR,2026-01-01,', "rate"),
    ("comma that may be thousands", '212,"1,234",EUR,2026-01-01,', "rate"),
    ("two commas", '212,"0,0,1",EUR,2026-01-01,', "rate"),
    ("currency too long", "212,0.02,EURO,2026-01-01,", "currency"),
    ("symbol for currency", "212,0.02,€,2026-01-01,", "currency"),
    ("digit in currency", "212,0.02,E1R,2026-01-01,", "currency"),
    ("empty currency", "212,0.02,,2026-01-01,", "currency"),
    ("month 13", "212,0.02,EUR,2026-13-01,", "effective_from"),
    ("day first", "212,0.02,EUR,01/02/2026,", "effective_from"),
    ("empty date", "212,0.02,EUR,,", "effective_from"),
    ("before year 1 in UTC", "212,0.02,EUR,0001-01-01T00:00:00+01:00,", "effective_from"),
    ("increment without next", "212,0.02,EUR,2026-01-01,60", "increment"),
    ("zero first block", "212,0.02,EUR,2026-01-01,0/60", "increment"),
    ("zero next block", "212,0.02,EUR,2026-01-01,60/0", "increment"),
    ("increment in words", "212,0.02,EUR,2026-01-01,per minute", "increment"),
    ("increment with dash", "212,0.02,EUR,2026-01-01,60-60", "increment"),
]


@pytest.mark.parametrize(
    ("row", "column"), [(row, column) for _, row, column in BAD_ROWS], ids=[c[0] for c in BAD_ROWS]
)
def test_given_bad_row_when_parsed_then_refused_naming_line_and_column(
    row: str, column: str
) -> None:
    # The bad row is on line 4, after the header and two good rows: nothing is imported.
    text = HEADER + "213,0.09,EUR,2026-01-01,\n216,0.05,EUR,2026-01-01,\n" + row + "\n"
    with pytest.raises(InvalidInput) as caught:
        parse_rate_deck(text)
    assert caught.value.details["line"] == 4
    assert caught.value.details["column"] == column
    assert f"line 4, column '{column}'" in caught.value.message


def test_given_conflicting_duplicate_when_parsed_then_both_lines_named() -> None:
    # The same start written two ways: midnight UTC on 1 January.
    text = (
        HEADER
        + "212,0.02,EUR,2026-01-01,\n213,0.09,EUR,2026-01-01,\n212,0.03,EUR,2026-01-01T00:00Z,\n"
    )
    with pytest.raises(InvalidInput) as caught:
        parse_rate_deck(text)
    assert caught.value.details["line"] == 4
    assert caught.value.details["column"] == "prefix"
    assert "on line 2" in caught.value.message


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("rate,currency,effective_from", "prefix"),
        ("prefix,currency,effective_from", "rate"),
        ("prefix,rate,currency", "effective_from"),
        ("prefix,rate,effective_from", "currency"),  # no default currency given
        ("prefix,rate,currency,effective_from,end_date", "end_date"),  # never silently dropped
        ("prefix,rate,currency,effective_from,rate", "rate"),
    ],
)
def test_given_bad_header_when_parsed_then_refused_naming_the_column(
    header: str, column: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rate_deck(header + "\n")
    assert caught.value.details["line"] == 1
    assert caught.value.details["column"] == column


@pytest.mark.parametrize(
    "text",
    ["", "\ufeff", "\n\r\n  \n", "212,0.02,EUR,2026-01-01\n", "numero;tarif;devise;date\n"],
)
def test_given_no_header_when_parsed_then_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"header|first line"):
        parse_rate_deck(text)


def test_given_unnamed_column_when_parsed_then_refused() -> None:
    with pytest.raises(InvalidInput, match="column 5 has no name"):
        parse_rate_deck("prefix,rate,currency,effective_from,\n")


@pytest.mark.parametrize(
    "row", ["212,0,0780,EUR,2026-01-01", "212,0.02,EUR", "212,0.02,EUR,2026-01-01,60/60,x"]
)
def test_given_row_with_wrong_field_count_when_parsed_then_refused(row: str) -> None:
    text = "prefix,rate,currency,effective_from\n" + row + "\n"
    with pytest.raises(InvalidInput, match=r"line 2: .* fields where the header has 4"):
        parse_rate_deck(text)


def test_given_broken_quoting_when_parsed_then_refused_with_line() -> None:
    text = HEADER + '212,0.02,EUR,2026-01-01,\n213,"0.09"x,EUR,2026-01-01,\n'
    with pytest.raises(InvalidInput, match="line 3: unreadable CSV"):
        parse_rate_deck(text)


def test_given_bad_default_currency_when_parsed_then_refused() -> None:
    with pytest.raises(InvalidInput, match="default currency"):
        parse_rate_deck(HEADER, default_currency="euro")


def test_given_several_bad_rows_when_parsed_then_every_problem_is_listed() -> None:
    text = (
        "prefix;rate;currency;effective_from\r\n"
        "212;0,02;EUR;2026-01-01\r\n"
        "\r\n"
        "21x;0,02;EUR;2026-01-01\r\n"  # line 4
        "213;-1;EUR;someday\r\n"  # line 5, two problems
    )
    with pytest.raises(InvalidInput) as caught:
        parse_rate_deck(text)
    assert [(p["line"], p["column"]) for p in caught.value.details["problems"]] == [
        (4, "prefix"),
        (5, "rate"),
        (5, "effective_from"),
    ]
    assert caught.value.message.startswith("rate deck refused, nothing imported: line 4,")


def test_given_multiline_quoted_field_when_parsed_then_later_lines_are_numbered_right() -> None:
    text = (
        "prefix,rate,currency,effective_from,description\n"
        '212,0.02,EUR,2026-01-01,"Morocco\nfixed lines"\n'  # lines 2-3
        "\n"  # line 4
        "213,bad,EUR,2026-01-01,Algeria\n"  # line 5
    )
    with pytest.raises(InvalidInput, match="line 5, column 'rate'"):
        parse_rate_deck(text)


def test_given_too_many_rows_when_parsed_then_refused() -> None:
    text = HEADER + "".join(f"21{n},0.02,EUR,2026-01-01,\n" for n in range(4))
    assert len(parse_rate_deck(text, max_rows=4)) == 4
    with pytest.raises(InvalidInput, match=r"line 5: more than 3 rows") as caught:
        parse_rate_deck(text, max_rows=3)
    assert caught.value.details["line"] == 5


# --- Export and round trip -------------------------------------------------------------------


def test_given_rates_when_exported_then_the_same_format_comes_out() -> None:
    rates = [
        rate("212", "0.0200"),
        rate(
            "2126", "1E+1", datetime(2026, 2, 1, 9, 30, tzinfo=timezone(timedelta(hours=1))), (1, 1)
        ),
    ]
    assert rate_deck_to_csv(rates) == (
        "prefix,rate,currency,effective_from,increment\n"
        "212,0.0200,EUR,2026-01-01T00:00:00+00:00,60/60\n"
        "2126,10,EUR,2026-02-01T08:30:00+00:00,1/1\n"
    )


def test_given_parsed_deck_when_exported_and_reimported_then_identical() -> None:
    text = (
        "prefix;rate;currency;effective_from;increment\r\n"
        "212;0,0200;EUR;2026-01-01;\r\n"
        "+2126;0.078;eur;2026-01-01T12:00:00.250000+02:00;30/6\r\n"
    )
    rates = parse_rate_deck(text)
    assert parse_rate_deck(rate_deck_to_csv(rates)) == rates


prefixes = st.text("0123456789", min_size=0, max_size=14).map(lambda tail: "9" + tail)
amounts = st.decimals(
    min_value=Decimal(0), max_value=Decimal(1000), allow_nan=False, allow_infinity=False, places=6
)
moments = st.datetimes(
    # Inside the instants an operator may give (2000-2099 in UTC), whatever the offset.
    min_value=datetime(2000, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))]),
)
rates_strategy = st.builds(
    Rate,
    prefix=prefixes,
    per_minute=st.builds(Money, amount=amounts, currency=st.sampled_from(["EUR", "MAD", "USD"])),
    effective_from=moments,
    increment=st.builds(
        BillingIncrement,
        first_seconds=st.integers(min_value=1, max_value=3600),
        next_seconds=st.integers(min_value=1, max_value=3600),
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(rates_strategy, max_size=30, unique_by=lambda r: (r.prefix, r.effective_from)))
def test_any_deck_round_trips_through_csv(rates: list[Rate]) -> None:
    assert parse_rate_deck(rate_deck_to_csv(rates)) == rates


# --- A big deck ------------------------------------------------------------------------------


def test_given_10000_row_deck_when_parsed_then_lookups_match_brute_force() -> None:
    generator = random.Random(20260110)
    starts = [JANUARY, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)]
    countries = ["212", "213", "216", "33", "1", "44", "221", "225"]
    rows: dict[tuple[str, datetime], str] = {}
    while len(rows) < 10_000:
        prefix = generator.choice(countries) + "".join(
            generator.choice("0123456789") for _ in range(generator.randint(0, 6))
        )
        start = generator.choice(starts)
        rows.setdefault((prefix, start), f"{generator.randint(1, 99_999) / 10_000:.4f}")
    delimiter = ";"
    lines = ["Prefix;Rate;Currency;Effective_From;Increment;Destination"]
    for (prefix, start), amount in rows.items():
        written = generator.choice([prefix, "+" + prefix, "00" + prefix])
        lines.append(
            delimiter.join(
                [written, amount.replace(".", ","), "EUR", start.date().isoformat(), "1/1", "x"]
            )
        )
    text = "\r\n".join(lines) + "\r\n"

    rates = parse_rate_deck(text)

    assert len(rates) == 10_000
    deck = RateDeck(rates)
    # Brute force: every rate of the deck is checked for every number.
    for _ in range(300):
        number = generator.choice(countries) + "".join(
            generator.choice("0123456789") for _ in range(9)
        )
        at = generator.choice([*starts, datetime(2025, 12, 31, tzinfo=UTC)]) + timedelta(
            hours=generator.choice([-1, 0, 1])
        )
        matching = [
            item for item in rates if number.startswith(item.prefix) and item.effective_from <= at
        ]
        expected = max(
            matching, key=lambda item: (len(item.prefix), item.effective_from), default=None
        )
        assert deck.lookup("+" + number, at) == expected
