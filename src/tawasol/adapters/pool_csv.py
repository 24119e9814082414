"""The direct-number pool as CSV: the numbers a DID provider rents the operator.

    number;trunk;description
    +33184000001;fr-did;Paris 1
    01 84 00 00 02;fr-did

- `number`: the number as the provider lists it, E.164 (`+33184000001`, `0033...`) or national
  (`01 84 00 00 02`, read with the trunk's country);
- `trunk`: the code of an inbound trunk that exists;
- `description` is allowed and ignored; any other column is refused (never silently dropped).

Delimiter `,` or `;` (told from the header), UTF-8 with or without a byte-order mark, blank
lines skipped. This module only reads the file; `DirectNumberService.import_pool` checks every
row (valid number in the trunk's country and ranges, no repeat, not already in the pool) and
imports all or nothing.
"""

from __future__ import annotations

import csv
import io

from tawasol.domain.errors import InvalidInput

REQUIRED = ("number", "trunk")
ALLOWED = (*REQUIRED, "description")
MAX_BYTES = 4 * 1024 * 1024


def parse_pool_csv(text: str) -> list[tuple[int, str, str]]:
    """`(line, number, trunk)` for every data row; InvalidInput for a file that is not one."""
    text = text.removeprefix("\ufeff")
    lines = io.StringIO(text, newline="").readlines()
    header_index = next((index for index, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise InvalidInput("the pool file is empty: the first line must name its columns")
    header_line = lines[header_index]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(lines[header_index:], delimiter=delimiter)
    header = [cell.strip().lower() for cell in next(reader)]
    unknown = [name for name in header if name not in ALLOWED]
    missing = [name for name in REQUIRED if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise InvalidInput(
            "the pool file's header must name the columns number and trunk "
            "(and optionally description), each once",
            unknown=unknown,
            missing=missing,
        )
    number_at, trunk_at = header.index("number"), header.index("trunk")
    rows: list[tuple[int, str, str]] = []
    problems: list[str] = []
    for offset, cells in enumerate(reader):
        line = header_index + 2 + offset
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            problems.append(f"line {line}: {len(cells)} cells, the header names {len(header)}")
            continue
        rows.append((line, cells[number_at].strip(), cells[trunk_at].strip()))
    if problems:
        raise InvalidInput(
            f"pool file refused, nothing imported: {len(problems)} problem(s)",
            problems=problems[:100],
        )
    return rows
