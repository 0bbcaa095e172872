"""Property-based tests (hypothesis).

CelebA annotation files: ``write_annotations`` then ``read_celeba`` gives any frame back, also
after the whitespace is re-spaced the way hand-edited or differently generated files are; and any
single corruption of one row (or the count line) of any of the five files is a DataError that
names that file and that line, never another exception.

Fairness metrics (tests/test_fairness.py already checks swapping the groups, permuting rows and
integer weights): each group's metrics depend on that group's rows only, and complementing the
outcome (y, y_pred, score -> 1 - each) maps the rates and fairness metrics onto each other as
the definitions say.
"""

from __future__ import annotations

import string

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fairgen.common.errors import DataError
from fairgen.data import celeba as C
from fairgen.eval import fairness as F

INT32_MAX = 2**31 - 1
# settings shared by the file-writing properties: each example writes five files
FILES = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# ------------------------------------------------------------------------------------ frames

image_ids = st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=1, max_size=10).flatmap(
    lambda stem: st.sampled_from([f"{stem}.jpg", f"{stem}.jpeg", f"{stem}.png"]))


@st.composite
def frames(draw, max_rows: int = 8) -> pd.DataFrame:
    """A frame with read_celeba's columns and dtypes: unique ids, any split, 0/1 attributes,
    landmarks in the int32 range CelebA's parser accepts, identity and bbox >= 0."""
    ids = draw(st.lists(image_ids, min_size=1, max_size=max_rows, unique=True))
    n = len(ids)
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=n, max_size=n)  # noqa: E731
    df = pd.DataFrame({"image_id": ids, "split": draw(st.lists(st.sampled_from(C.SPLITS), min_size=n, max_size=n))})
    bits = np.array(draw(st.lists(st.integers(0, 2**40 - 1), min_size=n, max_size=n)), dtype=np.int64)
    for k, a in enumerate(C.ATTRIBUTE_NAMES):
        df[a] = ((bits >> k) & 1).astype(np.int8)
    for c in C.LANDMARK_NAMES:
        df[c] = np.array(draw(ints(-INT32_MAX, INT32_MAX)), dtype=np.int32)
    df["identity"] = np.array(draw(ints(0, INT32_MAX)), dtype=np.int32)
    for c in C.BBOX_COLUMNS:
        df[c] = np.array(draw(ints(0, INT32_MAX)), dtype=np.int32)
    df["image_id"] = df["image_id"].astype(str)
    df["split"] = df["split"].astype(str)
    return df[list(C.COLUMNS)]


def respace(text: str, draw) -> str:
    """Re-join every line's tokens with 1-4 spaces or a tab, with optional leading/trailing
    blanks, and CRLF or LF line ends."""
    sep = draw(st.sampled_from(["\n", "\r\n"]))
    out = []
    for line in text.split("\n")[:-1]:
        tokens = line.split()
        gaps = draw(st.lists(st.sampled_from([" ", "  ", "   ", "    ", "\t", " \t"]),
                             min_size=len(tokens) + 1, max_size=len(tokens) + 1))
        lead = gaps[0] if draw(st.booleans()) else ""
        tail = gaps[-1] if draw(st.booleans()) else ""
        out.append(lead + "".join(t + g for t, g in zip(tokens, gaps[1:-1] + [""])) + tail)
    return sep.join(out) + sep


def write_files(root, texts: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (root / name).write_bytes(text.encode())


@FILES
@given(df=frames(), data=st.data())
def test_write_read_round_trip_with_any_spacing(tmp_path_factory, df, data):
    root = tmp_path_factory.mktemp("celeba")
    C.write_annotations(root, df)
    pd.testing.assert_frame_equal(C.read_celeba(root), df)
    texts = {name: respace(text, data.draw) for name, text in C.format_annotations(df).items()}
    write_files(root, texts)
    pd.testing.assert_frame_equal(C.read_celeba(root), df)


# ------------------------------------------------------------------------------------ corruptions

HEADED = {C.ATTR_FILE, C.LANDMARKS_FILE, C.BBOX_FILE}  # count line + header line before the rows
# a value that no column of the file accepts (out of range or not an integer)
OUT_OF_RANGE = {C.ATTR_FILE: ["0", "2", "-2"], C.LANDMARKS_FILE: [str(INT32_MAX + 1), str(-INT32_MAX - 1)],
                C.PARTITION_FILE: ["3", "-1"], C.IDENTITY_FILE: ["-1", str(INT32_MAX + 1)],
                C.BBOX_FILE: ["-1", str(INT32_MAX + 1)]}
NOT_INTEGERS = ["1.0", "x", "1e3", "0x1", "+-1", "--1", "NaN", ""]
KINDS = ["out_of_range", "not_an_integer", "missing_value", "extra_value", "duplicate_id", "bad_id",
         "blank_line", "count_line"]


@FILES
@given(df=frames(max_rows=6), name=st.sampled_from(C.ANNOTATION_FILES), kind=st.sampled_from(KINDS),
       data=st.data())
def test_any_single_corruption_names_file_and_line(tmp_path_factory, df, name, kind, data):
    texts = C.format_annotations(df)
    lines = texts[name].split("\n")[:-1]
    first = 3 if name in HEADED else 1  # line number of the first data row
    n = len(df)
    row = data.draw(st.integers(0, n - 1), label="row")
    line = first + row
    tokens = lines[line - 1].split()
    expected_line = line
    if kind == "count_line":
        assume(name in HEADED)
        lines[0] = str(data.draw(st.integers(0, 10**6).filter(lambda k: k != n), label="count"))
        expected_line = 1
    elif kind in ("out_of_range", "not_an_integer"):
        col = data.draw(st.integers(1, len(tokens) - 1), label="column")
        bad = OUT_OF_RANGE[name] if kind == "out_of_range" else NOT_INTEGERS
        tokens[col] = data.draw(st.sampled_from(bad), label="value")
        if tokens[col] == "":  # an empty value is a missing one
            del tokens[col]
    elif kind == "missing_value":
        del tokens[data.draw(st.integers(1, len(tokens) - 1), label="column")]
    elif kind == "extra_value":
        tokens.insert(data.draw(st.integers(1, len(tokens)), label="at"), "1")
    elif kind == "duplicate_id":
        assume(n >= 2 and row >= 1)
        earlier = data.draw(st.integers(0, row - 1), label="earlier")
        tokens[0] = lines[first + earlier - 1].split()[0]
    elif kind == "bad_id":
        tokens[0] = data.draw(st.sampled_from(["000001.gif", "a b.jpg", "x/../1.jpg", "1.jpg.txt", ".jpg"]),
                              label="id")
        assume(" " not in tokens[0])  # (an id with a space is the 'extra value' case)
    elif kind == "blank_line":
        assume(row < n - 1)  # trailing blank lines are allowed
        lines.insert(line, "")
        expected_line = line + 1
    if kind not in ("count_line", "blank_line"):
        lines[line - 1] = " ".join(tokens)
    texts[name] = "\n".join(lines) + "\n"
    root = tmp_path_factory.mktemp("celeba")
    write_files(root, texts)
    with pytest.raises(DataError) as e:
        C.read_celeba(root)
    assert f"{root / name}, line {expected_line}:" in str(e.value)


# ------------------------------------------------------------------------------------ fairness

rows = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 1), st.integers(0, 4),
                          st.integers(1, 5)), min_size=2, max_size=40)


def columns(data):
    y, p, c, s, w = (np.array(col) for col in zip(*data))
    return y, p, c, s / 4, w.astype(float)


def same(a, b):
    if a is None or b is None:
        assert a is None and b is None, (a, b)
    else:
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(rows, rows)
def test_group_metrics_depend_on_their_own_rows_only(data, other):
    """Replacing every row of group 1 leaves every metric of group 0 unchanged."""
    y, p, c, s, w = columns(data)
    y2, p2, c2, s2, w2 = columns(other)
    assume((c == 0).any() and (c == 1).any() and (c2 == 1).any())
    keep, new = c == 0, c2 == 1
    kw = dict(privileged=1, n_boot=0, allow_undefined=True)
    a = F.evaluate(y, p, c, score=s, sample_weight=w, **kw)
    b = F.evaluate(*(np.concatenate([u[keep], v[new]]) for u, v in ((y, y2), (p, p2), (c, c2))),
                   score=np.concatenate([s[keep], s2[new]]), sample_weight=np.concatenate([w[keep], w2[new]]), **kw)
    for k, v in a["groups"]["0"].items():
        same(v, b["groups"]["0"][k])


# rates of the complemented outcome (y, y_pred -> 1 - y, 1 - y_pred): name -> (name, complemented?)
COMPLEMENT = {"tpr": ("tnr", False), "tnr": ("tpr", False), "fpr": ("fnr", False), "fnr": ("fpr", False),
              "selection_rate": ("selection_rate", True), "base_rate": ("base_rate", True),
              "error_rate": ("error_rate", False), "accuracy": ("accuracy", False),
              "balanced_accuracy": ("balanced_accuracy", False), "auc": ("auc", False),
              "n": ("n", False), "weight": ("weight", False)}
FAIRNESS_COMPLEMENT = {"demographic_parity_difference": ("demographic_parity_difference", 1),
                       "equal_opportunity_difference": ("false_positive_rate_difference", 1),
                       "false_positive_rate_difference": ("equal_opportunity_difference", 1),
                       "equalized_odds_difference": ("equalized_odds_difference", 1),
                       "error_rate_gap": ("error_rate_gap", 1),
                       "statistical_parity_difference": ("statistical_parity_difference", -1),
                       "average_odds_difference": ("average_odds_difference", -1)}


@settings(max_examples=80, deadline=None)
@given(rows, st.sampled_from([0, 1]))
def test_complementing_the_outcome_maps_metrics_onto_each_other(data, privileged):
    y, p, c, s, w = columns(data)
    assume((c == 0).any() and (c == 1).any())
    kw = dict(sample_weight=w, privileged=privileged, n_boot=0, allow_undefined=True)
    a = F.evaluate(y, p, c, score=s, **kw)
    b = F.evaluate(1 - y, 1 - p, c, score=1 - s, **kw)
    for part in ("overall", *(("groups", g) for g in ("0", "1"))):
        ra = a[part] if part == "overall" else a[part[0]][part[1]]
        rb = b[part] if part == "overall" else b[part[0]][part[1]]
        for k, (k2, complemented) in COMPLEMENT.items():
            expected = ra[k]
            if complemented and expected is not None:
                expected = 1 - expected
            same(rb[k2], expected)
    for k, (k2, sign) in FAIRNESS_COMPLEMENT.items():
        same(b["fairness"][k2], None if a["fairness"][k] is None else sign * a["fairness"][k])
