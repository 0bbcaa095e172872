"""The sweep point grammar (fairgen.common.sweep_points): the one definition of PAIR/sSEED[/lLAMBDA] that the
workflow (common.smk, sweep.smk's wildcard constraints) and fairgen.eval.sweep.parse_metrics_path share."""

from __future__ import annotations

import re

import pytest

from fairgen.common import sweep_points as sp
from fairgen.common.errors import DataError
from fairgen.eval import sweep


@pytest.mark.parametrize("protected, outcome, seed, lam, text", [
    ("Male", "Attractive", 0, None, "Male-Attractive/s0"),
    ("Male", "Attractive", 2, 0.5, "Male-Attractive/s2/l0.5"),
    ("Heavy_Makeup", "Smiling", 10, 1.0, "Heavy_Makeup-Smiling/s10/l1"),
    ("A", "B", 3, 1e-05, "A-B/s3/l1e-05"),
    ("A", "B", 3, 0, "A-B/s3/l0"),
])
def test_format_and_parse_round_trip(protected, outcome, seed, lam, text):
    assert sp.format_point(protected, outcome, seed, lam) == text
    assert re.fullmatch(sp.POINT_PATTERN, text)  # the point wildcard's constraint accepts it
    want = {"protected": protected, "outcome": outcome, "seed": seed,
            "lambda_fair": None if lam is None else float(lam)}
    assert sp.parse_point(text) == want
    assert sp.parse_pair(sp.pair_of(text)) == (protected, outcome)
    assert sp.lambda_free_point(text) == sp.format_point(protected, outcome, seed)
    # fairgen sweep-aggregate reads the same point back from a metrics path
    parsed = sweep.parse_metrics_path(f"results/sweep/{text}/classifiers/real/metrics.json")
    assert parsed == {**want, "method": "real"}


@pytest.mark.parametrize("text", ["Male-Attractive", "Male-Attractive/0", "Male/s0", "Male-Attractive/s0/x1",
                                  "Male-Attractive/s0/l", "Male-Attractive/s-1", "Male-Attr-active/s0"])
def test_parse_rejects_what_the_wildcard_rejects(text):
    assert not re.fullmatch(sp.POINT_PATTERN, text)
    with pytest.raises(DataError, match=re.escape(text)):
        sp.parse_point(text)


def test_a_lambda_the_pattern_admits_but_is_no_number_fails_naming_it():
    assert re.fullmatch(sp.POINT_PATTERN, "A-B/s0/l1.2.3")
    with pytest.raises(DataError, match=r"A-B/s0/l1\.2\.3: lambda folder 'l1\.2\.3' is not a number"):
        sp.parse_point("A-B/s0/l1.2.3")


def test_pairs():
    assert sp.format_pair("Young", "Smiling") == "Young-Smiling" and re.fullmatch(sp.PAIR_PATTERN, "Young-Smiling")
    for bad in ("Young", "Young-", "Young-Smiling-X", "Young-Smiling/s0"):
        with pytest.raises(DataError, match=re.escape(bad)):
            sp.parse_pair(bad)
