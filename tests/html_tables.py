"""Read an HTML table of the audit report cell by cell (stdlib only): each cell's main text and
the text of its ``<span class="sub">`` (the interval under a value), so that a test can check
that a number sits in its own cell, under its own column, in its method's row."""

from __future__ import annotations

import html.parser


class _TableReader(html.parser.HTMLParser):
    def __init__(self, table_id: str):
        super().__init__(convert_charrefs=True)
        self.table_id = table_id
        self.depth = 0  # >0 inside the wanted table (nested tables count)
        self.header: list[str] = []
        self.rows: list[list[dict[str, str]]] = []
        self.cell: dict[str, str] | None = None
        self.in_sub = False
        self.in_head = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (self.depth or attrs.get("id") == self.table_id):
            self.depth += 1
        if not self.depth:
            return
        if tag == "thead":
            self.in_head = True
        elif tag == "tr" and not self.in_head:
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = {"text": "", "sub": ""}
        elif tag == "span" and "sub" in (attrs.get("class") or "").split():
            self.in_sub = True

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag == "table":
            self.depth -= 1
        elif tag == "thead":
            self.in_head = False
        elif tag == "span":
            self.in_sub = False
        elif tag in ("td", "th") and self.cell is not None:
            cell = {k: " ".join(v.split()) for k, v in self.cell.items()}
            if self.in_head:
                self.header.append(cell["text"])
            else:
                self.rows[-1].append(cell)
            self.cell = None

    def handle_data(self, data):
        if self.depth and self.cell is not None:
            self.cell["sub" if self.in_sub else "text"] += data


def read_table(html_text: str, table_id: str) -> tuple[list[str], list[list[dict[str, str]]]]:
    """(column labels, rows) of ``<table id=table_id>``; a row is a list of cells
    ``{"text": ..., "sub": ...}`` with whitespace collapsed. AssertionError if there is no such table."""
    reader = _TableReader(table_id)
    reader.feed(html_text)
    reader.close()
    assert reader.header or reader.rows, f"table #{table_id} missing"
    return reader.header, reader.rows


def rows_by_first_cell(html_text: str, table_id: str) -> tuple[list[str], dict[str, list[dict[str, str]]]]:
    """Like :func:`read_table`, the rows keyed by their first cell's text (which must be unique)."""
    header, rows = read_table(html_text, table_id)
    keyed = {row[0]["text"]: row for row in rows}
    assert len(keyed) == len(rows), f"table #{table_id}: first cells repeat"
    return header, keyed


def column(header: list[str], label: str) -> int:
    """The index of the column whose label is ``label`` or starts with ``label + ' '`` (a sort arrow)."""
    hits = [i for i, h in enumerate(header) if h == label or h.startswith(label + " ")]
    assert len(hits) == 1, f"column {label!r} in {header}"
    return hits[0]


def number(value) -> str:
    """A value as the report prints it in a cell: 3 decimals, an em dash when missing."""
    return "\u2014" if value is None else f"{value:.3f}"


def interval(lo, hi) -> str:
    return "" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


#: the audit's classifier table (``comparison-table``): metric -> column label, written out here
#: rather than read from fairgen.report.tables, so that a renamed or dropped column is noticed
COMPARISON_LABELS = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced acc.",
                     "demographic_parity_difference": "DP diff.", "demographic_parity_ratio": "DP ratio",
                     "equal_opportunity_difference": "EO diff.", "equalized_odds_difference": "Eq. odds diff.",
                     "error_rate_gap": "Error-rate gap"}


def assert_row_shows_metrics(header: list[str], row: list[dict[str, str]], metrics: dict) -> None:
    """``row`` of the classifier table shows the test-set size and each metric of ``metrics`` (a
    classifier's metrics.json) with its bootstrap interval, each in the cell of its column."""
    method = row[0]["text"]
    assert row[column(header, "n test")]["text"] == f"{metrics['n']:,}", method
    for key, label in COMPARISON_LABELS.items():
        value = metrics["overall"][key] if key in metrics["overall"] else metrics["fairness"][key]
        cell = row[column(header, label)]
        assert cell["text"] == number(value), (method, key, cell)
        assert cell["sub"] == interval(*metrics["ci"][key]), (method, key, cell)
