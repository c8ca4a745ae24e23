"""A dashboard table as CSV: UTF-8 with a byte-order mark, which is how Excel (in Korea too)
knows the file is UTF-8 and shows Hangul instead of mojibake. Amounts stay plain integers so a
spreadsheet can add them up; times are KST."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from citypay.admin.figures import kst

Language = Literal["ko", "en"]
BOM = "\ufeff"


def _cell(kind: str, value: Any, language: Language) -> Any:
    if value is None:
        return ""
    if kind == "label":
        return value[language]
    if kind == "time":
        return kst(value).strftime("%Y-%m-%d %H:%M:%S")
    return value


def table_csv(table: dict[str, Any], language: Language) -> str:
    """`table` as the summary gives it (columns with names in both languages, rows by key)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    columns = table["columns"]
    writer.writerow([column[language] for column in columns])
    for row in table["rows"]:
        writer.writerow([_cell(c["kind"], row.get(c["key"]), language) for c in columns])
    return out.getvalue()
