"""The path grammar of a sweep point, in one place.

A sweep point (workflow/rules/sweep.smk) is a path part::

    PROTECTED-OUTCOME/sSEED            methods and runs gan.lambda_fair does not change
    PROTECTED-OUTCOME/sSEED/lLAMBDA    those it does (LAMBDA as ``format(float(value), 'g')``)

The Snakemake rules format points and read their values back with these functions
(workflow/rules/common.smk) and use the patterns as wildcard constraints; ``fairgen
sweep-aggregate`` reads the point of a metrics file from its path (:mod:`fairgen.eval.sweep`).

This module imports only :mod:`fairgen.common.errors`.
"""

from __future__ import annotations

import re

from fairgen.common.errors import DataError

#: an attribute name (a column of the dataset: letters, digits, underscores)
NAME = r"[A-Za-z0-9_]+"
#: a lambda_fair value as it appears in a path (1.0 -> 1, 0.5 -> 0.5, 1e-05)
LAMBDA = r"[0-9][0-9.e+-]*"
#: wildcard constraint of a pair (PROTECTED-OUTCOME)
PAIR_PATTERN = rf"{NAME}-{NAME}"
#: wildcard constraint of a point (PAIR/sSEED[/lLAMBDA])
POINT_PATTERN = rf"{PAIR_PATTERN}/s[0-9]+(?:/l{LAMBDA})?"
#: the same with named groups: protected, outcome, seed, lambda_fair (the text after "l")
POINT_GROUPS = rf"(?P<protected>{NAME})-(?P<outcome>{NAME})/s(?P<seed>[0-9]+)(?:/l(?P<lambda_fair>{LAMBDA}))?"


def format_lambda(value) -> str:
    """A lambda_fair value as it appears in a path: ``1.0 -> '1'``, ``0.5 -> '0.5'``."""
    return f"{float(value):g}"


def format_pair(protected: str, outcome: str) -> str:
    return f"{protected}-{outcome}"


def format_point(protected: str, outcome: str, seed: int, lambda_fair=None) -> str:
    """``PROTECTED-OUTCOME/sSEED`` or, with ``lambda_fair``, ``.../lLAMBDA``."""
    point = f"{format_pair(protected, outcome)}/s{int(seed)}"
    return point if lambda_fair is None else f"{point}/l{format_lambda(lambda_fair)}"


def parse_pair(text: str) -> tuple[str, str]:
    """``'Male-Attractive' -> ('Male', 'Attractive')`` (DataError for anything else)."""
    if not re.fullmatch(PAIR_PATTERN, text):
        raise DataError(f"'{text}' is not a sweep pair (expected PROTECTED-OUTCOME)")
    protected, outcome = text.split("-")
    return protected, outcome


def point_values(match: re.Match, where: str) -> dict:
    """protected, outcome, seed and lambda_fair (None without an lLAMBDA part) of a match of
    :data:`POINT_GROUPS`; DataError naming ``where`` for a lambda that is not a number."""
    lam = match["lambda_fair"]
    try:
        lam = None if lam is None else float(lam)
    except ValueError:
        raise DataError(f"{where}: lambda folder 'l{match['lambda_fair']}' is not a number") from None
    return {"protected": match["protected"], "outcome": match["outcome"], "seed": int(match["seed"]),
            "lambda_fair": lam}


def parse_point(text: str) -> dict:
    """``'Male-Attractive/s2/l0.5'`` -> ``{'protected': 'Male', 'outcome': 'Attractive', 'seed': 2,
    'lambda_fair': 0.5}`` (``lambda_fair`` None for the lambda-free form)."""
    m = re.fullmatch(POINT_GROUPS, text)
    if m is None:
        raise DataError(f"'{text}' is not a sweep point (expected PROTECTED-OUTCOME/sSEED[/lLAMBDA])")
    return point_values(m, text)


def pair_of(point: str) -> str:
    """The PROTECTED-OUTCOME part of a point (or of a pair)."""
    return point.split("/")[0]


def lambda_free_point(point: str) -> str:
    """The point without its lLAMBDA part (where the lambda-free runs of the same seed live)."""
    values = parse_point(point)
    return format_point(values["protected"], values["outcome"], values["seed"])
