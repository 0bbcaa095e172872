"""CelebA (aligned release): file list, download, verification and one strict annotation parser.

Two layouts of a CelebA root are recognised (:func:`find_layouts`) and go through the same parser
into the same frame. The official release (also what the embedded synthetic dataset writes)::

    root/img_align_celeba/000001.jpg ...        178x218 aligned faces
    root/list_attr_celeba.txt                   count line, 40 names, rows of -1/1
    root/list_landmarks_align_celeba.txt        count line, 10 landmark names, rows of ints
    root/list_eval_partition.txt                rows "000001.jpg 0" (0/1/2 = train/valid/test)
    root/identity_CelebA.txt                    rows "000001.jpg 2880"
    root/list_bbox_celeba.txt                   count line, "image_id x_1 y_1 width height", rows

The Kaggle copy (``jessicali9530/celeba-dataset``): comma-separated files with a header line and
no count line, no identity file, and the images one folder deeper::

    root/img_align_celeba/img_align_celeba/000001.jpg ...
    root/list_attr_celeba.csv                   "image_id,5_o_Clock_Shadow,...,Young", rows of -1/1
    root/list_landmarks_align_celeba.csv        "image_id,lefteye_x,...,rightmouth_y"
    root/list_eval_partition.csv                "image_id,partition" (0/1/2)
    root/list_bbox_celeba.csv                   "image_id,x_1,y_1,width,height"

:func:`read_celeba` parses all annotation files of a layout with the pandas C parser (fast path) and,
whenever anything looks wrong, re-reads the offending file line by line so that the
:class:`~fairgen.common.errors.DataError` names the file and the exact line.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from fairgen.common.errors import DataError, where

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CelebAFile:
    name: str
    gdrive_id: str
    md5: str


IMAGE_ZIP = "img_align_celeba.zip"
IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
IDENTITY_FILE = "identity_CelebA.txt"
BBOX_FILE = "list_bbox_celeba.txt"
LANDMARKS_FILE = "list_landmarks_align_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"

# Google Drive ids and MD5s of the aligned release (as in torchvision's celeba.py).
CELEBA_FILES: tuple[CelebAFile, ...] = (
    CelebAFile(IMAGE_ZIP, "0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    CelebAFile(ATTR_FILE, "0B7EVK8r0v71pblRyaVFSWGxPY0U", "75e246fa4810816ffd6ee81facbd244c"),
    CelebAFile(IDENTITY_FILE, "1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS", "32bd1bd63d3c78cd57e08160ec5ed1e2"),
    CelebAFile(BBOX_FILE, "0B7EVK8r0v71pbThiMVRxWXZ4dU0", "00566efa6fedff7a56946cd1c10f1c16"),
    CelebAFile(LANDMARKS_FILE, "0B7EVK8r0v71pd0FJY3Blby1HUTQ", "cc24ecafdb5b50baae59b03474781f8c"),
    CelebAFile(PARTITION_FILE, "0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668"),
)
ANNOTATION_FILES = (ATTR_FILE, LANDMARKS_FILE, PARTITION_FILE, IDENTITY_FILE, BBOX_FILE)

# The two layouts: "official" (the release's text files, checked by MD5) and "kaggle" (the Kaggle
# copy's CSV files, checked for counts; no identity file; images one folder deeper).
OFFICIAL, KAGGLE = "official", "kaggle"
LAYOUTS = (OFFICIAL, KAGGLE)
KAGGLE_FILES: dict[str, str] = {  # official name -> Kaggle name
    ATTR_FILE: "list_attr_celeba.csv",
    LANDMARKS_FILE: "list_landmarks_align_celeba.csv",
    PARTITION_FILE: "list_eval_partition.csv",
    BBOX_FILE: "list_bbox_celeba.csv",
}
KAGGLE_IMAGE_DIR = f"{IMAGE_DIR}/{IMAGE_DIR}"
RELEASE_SPLIT_SIZES = {"train": 162_770, "valid": 19_867, "test": 19_962}

ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
LANDMARK_NAMES: tuple[str, ...] = (
    "lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
    "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y",
)
BBOX_NAMES: tuple[str, ...] = ("x_1", "y_1", "width", "height")
BBOX_COLUMNS: tuple[str, ...] = tuple(f"bbox_{n}" for n in BBOX_NAMES)
SPLIT_CODES: dict[int, str] = {0: "train", 1: "valid", 2: "test"}
SPLITS: tuple[str, ...] = ("train", "valid", "test")
IMAGE_WIDTH, IMAGE_HEIGHT = 178, 218
N_IMAGES = 202_599

COLUMNS: tuple[str, ...] = ("image_id", "split", *ATTRIBUTE_NAMES, *LANDMARK_NAMES, "identity", *BBOX_COLUMNS)

_IMAGE_ID = re.compile(r"^[A-Za-z0-9_.-]+\.(?:jpg|jpeg|png)$")
_INT = re.compile(r"^-?[0-9]+$")
_INT32_MAX = 2**31 - 1


# --------------------------------------------------------------------------------------------
# The strict parser
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """How one annotation file looks: optional count line, optional header, value columns."""

    filename: str
    values: tuple[str, ...]            # names of the value columns after the image id
    count_line: bool
    header: tuple[str, ...] | None     # expected tokens of the header line (after the count line)
    what: str                          # what a value is, for messages ("attribute", "landmark", ...)
    allowed: tuple[int, ...] | None = None
    minimum: int | None = None
    sep: str | None = None             # None: runs of whitespace (official); ",": CSV (Kaggle)
    reference: bool = False            # the file whose ids (and id syntax) the others must match

    def tokens(self, line: str) -> list[str]:
        return line.split() if self.sep is None else [t.strip() for t in line.split(self.sep)]

    @property
    def n_header_lines(self) -> int:
        return int(self.count_line) + int(self.header is not None)

    def describe(self, column: str) -> str:
        return self.what if len(self.values) == 1 else f"{self.what} '{column}'"

    def describe_allowed(self) -> str:
        if self.allowed is not None:
            return ", ".join(str(a) for a in self.allowed[:-1]) + f" or {self.allowed[-1]}" + (
                f" ({'/'.join(SPLITS)})" if self.values == ("split",) else "")
        lo = self.minimum if self.minimum is not None else -_INT32_MAX
        return f"an integer from {lo} to {_INT32_MAX}"


_SPECS = {
    ATTR_FILE: _Spec(ATTR_FILE, ATTRIBUTE_NAMES, True, ATTRIBUTE_NAMES, "attribute", allowed=(-1, 1),
                     reference=True),
    LANDMARKS_FILE: _Spec(LANDMARKS_FILE, LANDMARK_NAMES, True, LANDMARK_NAMES, "landmark"),
    PARTITION_FILE: _Spec(PARTITION_FILE, ("split",), False, None, "split code", allowed=tuple(SPLIT_CODES)),
    IDENTITY_FILE: _Spec(IDENTITY_FILE, ("identity",), False, None, "identity", minimum=0),
    BBOX_FILE: _Spec(BBOX_FILE, BBOX_NAMES, True, ("image_id", *BBOX_NAMES), "bbox value", minimum=0),
}
# The Kaggle CSVs: the same values under a header "image_id,<names>" (the partition file calls its
# column "partition"), no count line. Keyed by the official name, so both layouts share one reader.
_KAGGLE_HEADER = {PARTITION_FILE: ("partition",)}
_KAGGLE_SPECS = {
    name: _Spec(KAGGLE_FILES[name], spec.values, False, ("image_id", *_KAGGLE_HEADER.get(name, spec.values)),
                spec.what, spec.allowed, spec.minimum, sep=",", reference=spec.reference)
    for name, spec in _SPECS.items() if name in KAGGLE_FILES
}
SPECS_BY_LAYOUT = {OFFICIAL: _SPECS, KAGGLE: _KAGGLE_SPECS}


def layout_files(layout: str) -> tuple[str, ...]:
    """The annotation file names of a layout (the reference file first)."""
    return tuple(spec.filename for spec in SPECS_BY_LAYOUT[layout].values())


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{where(path, line)}: non-ASCII byte 0x{raw[e.start]:02x}") from None


def _line_starts(text: str, n: int) -> list[int]:
    """Offsets where lines 1..n+1 start (stops early at the end of the text)."""
    starts = [0]
    while len(starts) <= n:
        i = text.find("\n", starts[-1])
        if i < 0:
            break
        starts.append(i + 1)
    return starts


def _parse_table(path: Path, spec: _Spec) -> tuple[pd.DataFrame, int]:
    """Parse one annotation file; return (frame with image_id + value columns, first data line no.).

    Fast path: pandas' C parser on the body. Any irregularity (ragged rows, non-integers, blank
    lines, ...) sends the file to :func:`_diagnose`, which walks it line by line and raises a
    DataError naming the first bad line. Value checks are vectorised and map rows to lines 1:1.
    """
    text = _read_text(path)
    if spec.sep is not None:  # pandas' whitespace separator absorbs a '\r'; a comma separator does not
        text = text.replace("\r\n", "\n")
    nh = spec.n_header_lines
    starts = _line_starts(text, nh)
    if len(starts) <= nh:
        raise DataError(f"{path}: file ends before its {'header' if spec.header else 'first row'} "
                        f"(expected {nh} header line(s))")
    head = [text[starts[i]:starts[i + 1]].strip() for i in range(nh)]
    line_no = 1
    count = None
    if spec.count_line:
        if not _INT.match(head[0]) or int(head[0]) < 0:
            raise DataError(f"{where(path, 1)}: expected the number of images, found {head[0][:40]!r}")
        count = int(head[0])
        line_no += 1
    if spec.header is not None:
        got = tuple(spec.tokens(head[line_no - 1]))
        if got != spec.header:
            detail = _first_difference(got, spec.header)
            raise DataError(f"{where(path, line_no)}: header does not match CelebA's ({detail})")
        line_no += 1
    first = line_no
    body = text[starts[nh]:].rstrip()  # trailing blank lines are allowed
    names = ["image_id", *spec.values]
    df = None
    if body:
        try:
            with warnings.catch_warnings():  # surplus values land in _extra (checked below)
                warnings.simplefilter("ignore", pd.errors.ParserWarning)
                df = pd.read_csv(io.StringIO(body), sep=spec.sep or r"\s+", header=None, names=[*names, "_extra"],
                                 index_col=False, dtype={"image_id": object}, skip_blank_lines=False,
                                 engine="c", keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, ValueError):
            df = None
        else:
            ok = (len(df) == body.count("\n") + 1 and df["_extra"].isna().all()
                  and not df[names].isna().any().any()
                  and all(pd.api.types.is_integer_dtype(df[c]) for c in spec.values))
            df = df[names] if ok else None
        if df is None:
            _diagnose(path, spec, body.split("\n"), first)
            raise DataError(f"{path}: could not be parsed as a CelebA annotation file")  # pragma: no cover
    else:
        df = pd.DataFrame({c: pd.Series([], dtype=object if c == "image_id" else np.int64) for c in names})
    n = len(df)
    if count is not None and count != n:
        raise DataError(f"{where(path, 1)}: count line says {count} images but the file has {n} data rows")
    ids = df["image_id"].to_numpy(dtype=object)
    # Id syntax is checked in the reference file only; the others must list the same ids.
    bad_id = (~pd.Series(ids, dtype=object).str.match(_IMAGE_ID.pattern).to_numpy(dtype=bool)
              if spec.reference else np.zeros(0, bool))
    if bad_id.any():
        i = int(np.argmax(bad_id))
        raise DataError(f"{where(path, first + i)}: {ids[i]!r} is not an image file name like '000001.jpg'")
    for c in spec.values:
        v = df[c].to_numpy()
        if spec.allowed is not None:
            bad = ~np.isin(v, spec.allowed)
        else:
            bad = (v > _INT32_MAX) | (v < (spec.minimum if spec.minimum is not None else -_INT32_MAX))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where(path, first + i)}: {spec.describe(c)} of {ids[i]} is {v[i]}, "
                            f"expected {spec.describe_allowed()}")
    dup = pd.Series(ids, dtype=object).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        j = int(np.argmax(ids == ids[i]))
        raise DataError(f"{where(path, first + i)}: image id {ids[i]} is duplicated (first on line {first + j})")
    return df, first


def _diagnose(path: Path, spec: _Spec, lines: list[str], first: int) -> None:
    """Slow path: walk the data lines and raise a DataError for the first bad one."""
    n_expected = 1 + len(spec.values)
    for k, line in enumerate(lines):
        no = first + k
        tokens = spec.tokens(line)
        if not line.strip():
            raise DataError(f"{where(path, no)}: blank line inside the data rows")
        if len(tokens) != n_expected:
            raise DataError(f"{where(path, no)}: expected {n_expected} values (image id + {len(spec.values)} "
                            f"{spec.what}{'s' if len(spec.values) > 1 else ''}), found {len(tokens)}")
        if not _IMAGE_ID.match(tokens[0]):
            raise DataError(f"{where(path, no)}: {tokens[0]!r} is not an image file name like '000001.jpg'")
        for name, tok in zip(spec.values, tokens[1:]):
            if not _INT.match(tok) or abs(int(tok)) > _INT32_MAX:
                raise DataError(f"{where(path, no)}: {spec.describe(name)} of {tokens[0]} is {tok!r}, "
                                f"expected {spec.describe_allowed()}")


def _first_difference(got: tuple[str, ...], expected: tuple[str, ...]) -> str:
    missing = [e for e in expected if e not in got]
    if missing and len(got) != len(expected):
        return f"missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing[:5])}"
    for k, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            return f"name {k + 1} is {g!r}, expected {e!r}"
    return f"{len(got)} names, expected {len(expected)}"


def _align(path: Path, df: pd.DataFrame, first: int, ref_ids: pd.Index, ref_path: Path, ref_first: int) -> np.ndarray:
    """Row positions of ``ref_ids`` in ``df``; DataError if the two files do not list the same ids."""
    ids = pd.Index(df["image_id"].to_numpy(dtype=object))
    unknown = ref_ids.get_indexer(ids) < 0
    if unknown.any():
        i = int(np.argmax(unknown))
        raise DataError(f"{where(path, first + i)}: unknown image id {ids[i]} (not in {ref_path.name})")
    pos = ids.get_indexer(ref_ids)
    missing = pos < 0
    if missing.any():
        i = int(np.argmax(missing))
        raise DataError(f"{path}: image id {ref_ids[i]} ({where(ref_path.name, ref_first + i)}) "
                        f"is missing from {path.name}")
    return pos


def find_layouts(root: str | os.PathLike) -> tuple[str, ...]:
    """The layouts whose reference annotation file is in ``root`` (official first); DataError if none."""
    root = Path(root)
    found = tuple(layout for layout in LAYOUTS if (root / layout_files(layout)[0]).is_file())
    if not found:
        if not root.is_dir():
            raise DataError(f"{root}: CelebA root folder not found")
        raise DataError(f"{root}: no CelebA annotation files found: expected {ATTR_FILE} (the official "
                        f"release) or {KAGGLE_FILES[ATTR_FILE]} (the Kaggle copy)")
    return found


def find_image_dir(root: str | os.PathLike) -> Path:
    """The images' folder: ``img_align_celeba/img_align_celeba`` (Kaggle) if present, else ``img_align_celeba``."""
    root = Path(root)
    nested = root / KAGGLE_IMAGE_DIR
    return nested if nested.is_dir() else root / IMAGE_DIR


@dataclass
class _Parsed:
    """One layout's frame plus, per file, the line of each frame row (for messages)."""

    frame: pd.DataFrame
    lines: dict[str, np.ndarray]    # file name -> line number of frame row i in that file


def _read_layout(root: Path, layout: str) -> _Parsed:
    specs = SPECS_BY_LAYOUT[layout]
    ref_spec = specs[ATTR_FILE]
    attr_path = root / ref_spec.filename
    attrs, attr_first = _parse_table(attr_path, ref_spec)
    ref_ids = pd.Index(attrs["image_id"].to_numpy(dtype=object))
    n = len(ref_ids)
    lines = {ref_spec.filename: attr_first + np.arange(n)}
    out: dict[str, object] = {"image_id": attrs["image_id"].to_numpy(dtype=object)}
    tables = {}
    for name, spec in specs.items():
        if name == ATTR_FILE:
            continue
        path = root / spec.filename
        df, first = _parse_table(path, spec)
        pos = _align(path, df, first, ref_ids, attr_path, attr_first)
        tables[name] = df.iloc[pos]
        lines[spec.filename] = first + pos
    split_codes = tables[PARTITION_FILE]["split"].to_numpy()
    out["split"] = np.asarray(SPLITS, dtype=object)[split_codes] if n else np.array([], dtype=object)
    for a in ATTRIBUTE_NAMES:
        out[a] = (attrs[a].to_numpy() > 0).astype(np.int8)
    for c in LANDMARK_NAMES:
        out[c] = tables[LANDMARKS_FILE][c].to_numpy().astype(np.int32)
    if IDENTITY_FILE in tables:
        out["identity"] = tables[IDENTITY_FILE]["identity"].to_numpy().astype(np.int32)
    else:  # the Kaggle copy has no identity file: marked missing (nothing downstream needs it)
        out["identity"] = pd.array([pd.NA] * n, dtype="Int32")
    for c, b in zip(BBOX_NAMES, BBOX_COLUMNS):
        out[b] = tables[BBOX_FILE][c].to_numpy().astype(np.int32)
    frame = pd.DataFrame(out, columns=list(COLUMNS))
    frame["image_id"] = frame["image_id"].astype(str)  # pandas' default string dtype
    frame["split"] = frame["split"].astype(str)
    return _Parsed(frame, lines)


# Which file of a layout holds each compared column (for messages naming file and line).
_COLUMN_FILE = {"split": PARTITION_FILE, **{a: ATTR_FILE for a in ATTRIBUTE_NAMES},
                **{c: LANDMARKS_FILE for c in LANDMARK_NAMES}, **{c: BBOX_FILE for c in BBOX_COLUMNS}}


def _check_same(root: Path, official: _Parsed, kaggle: _Parsed) -> None:
    """DataError naming file and line where the official files and the Kaggle CSVs in ``root`` differ."""
    a, b = official.frame, kaggle.frame
    hint = f"both the official files and the Kaggle CSVs are in {root} and they differ; remove one set"
    a_ids, b_ids = pd.Index(a["image_id"]), pd.Index(b["image_id"])
    for ids, other_ids, parsed, other_layout in ((a_ids, b_ids, official, KAGGLE), (b_ids, a_ids, kaggle, OFFICIAL)):
        extra = other_ids.get_indexer(ids) < 0
        if extra.any():
            i = int(np.argmax(extra))
            spec = SPECS_BY_LAYOUT[OFFICIAL if parsed is official else KAGGLE][ATTR_FILE]
            raise DataError(f"{where(root / spec.filename, parsed.lines[spec.filename][i])}: image {ids[i]} is not "
                            f"in {SPECS_BY_LAYOUT[other_layout][ATTR_FILE].filename} ({hint})")
    pos = b_ids.get_indexer(a_ids)
    for col in _COLUMN_FILE:
        va, vb = a[col].to_numpy(), b[col].to_numpy()[pos]
        diff = va != vb
        if diff.any():
            i = int(np.argmax(diff))
            name = _COLUMN_FILE[col]
            fa, fb = _SPECS[name].filename, _KAGGLE_SPECS[name].filename
            raise DataError(f"{where(root / fb, kaggle.lines[fb][pos[i]])}: {col} of {a_ids[i]} is {vb[i]} but "
                            f"{where(fa, official.lines[fa][i])} says {va[i]} ({hint})")


def read_celeba(root: str | os.PathLike, layout: str | None = None) -> pd.DataFrame:
    """Parse the annotation files of a CelebA root into one frame (one row per image).

    ``layout`` is ``"official"``, ``"kaggle"`` or None (found by :func:`find_layouts`; when both
    are present they must agree row by row, and the official files, which carry identities, are
    used). Columns (in this order): ``image_id`` (str, '000001.jpg'), ``split``
    ('train'/'valid'/'test'), the 40 attributes (int8 0/1), the 10 aligned landmarks (int32),
    ``identity`` (int32; nullable Int32 all missing for the Kaggle copy, which has no identity
    file) and ``bbox_x_1 bbox_y_1 bbox_width bbox_height`` (int32; these boxes refer to the
    in-the-wild images, not the aligned ones). Rows follow the attribute file. Raises DataError
    naming file and line for any malformed, inconsistent or missing input.
    """
    root = Path(root)
    layouts = find_layouts(root) if layout is None else (layout,)
    parsed = {lay: _read_layout(root, lay) for lay in layouts}
    if len(parsed) == 2:
        _check_same(root, parsed[OFFICIAL], parsed[KAGGLE])
    return parsed[layouts[0]].frame


def image_path(root: str | os.PathLike, image_id: str) -> Path:
    """Path of one aligned image, ``root/img_align_celeba/<image_id>``."""
    if not isinstance(image_id, str) or not _IMAGE_ID.match(image_id):
        raise DataError(f"{image_id!r} is not a CelebA image id like '000001.jpg'")
    return Path(root) / IMAGE_DIR / image_id


# --------------------------------------------------------------------------------------------
# Writing annotation files in CelebA's exact text format (used by the synthetic dataset, tests)
# --------------------------------------------------------------------------------------------


def format_annotations(df: pd.DataFrame) -> dict[str, str]:
    """The five annotation files for ``df`` (read_celeba's columns) as text, in CelebA's style.

    The inverse of :func:`read_celeba`: ``read_celeba`` of the written files gives ``df`` back.
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"cannot write CelebA annotations: missing column(s) {', '.join(missing)}")
    ids = df["image_id"].astype(str).tolist()
    n = len(ids)
    split_code = {s: str(k) for k, s in SPLIT_CODES.items()}
    unknown = set(df["split"]) - set(split_code)
    if unknown:
        raise DataError(f"cannot write CelebA annotations: unknown split(s) {sorted(unknown)}")

    # list_attr_celeba.txt: "000001.jpg -1  1  1 -1 ..." (each value right-aligned in 2 chars).
    # Built as one fixed-width byte block: every value is 3 characters, "  1" or " -1".
    attr = df[list(ATTRIBUTE_NAMES)].to_numpy() > 0
    cells = np.where(attr[..., None], np.frombuffer(b"  1", np.uint8), np.frombuffer(b" -1", np.uint8))
    values = cells.reshape(n, -1).view(f"S{3 * len(ATTRIBUTE_NAMES)}").ravel()
    attr_rows = [i + v.decode() for i, v in zip(ids, values.tolist())]

    def ints(cols: Iterable[str], width: int) -> list[str]:
        block = df[list(cols)].to_numpy(dtype=np.int64)
        fmt = " ".join([f"%{width}d"] * block.shape[1])
        return [fmt % tuple(r) for r in block.tolist()]

    lm_rows = [f"{i} {r}" for i, r in zip(ids, ints(LANDMARK_NAMES, 4))]
    bbox_rows = [f"{i} {r}" for i, r in zip(ids, ints(BBOX_COLUMNS, 4))]
    return {
        ATTR_FILE: _lines([str(n), " ".join(ATTRIBUTE_NAMES) + " ", *attr_rows]),
        LANDMARKS_FILE: _lines([str(n), " ".join(LANDMARK_NAMES), *lm_rows]),
        PARTITION_FILE: _lines(f"{i} {split_code[s]}" for i, s in zip(ids, df["split"])),
        IDENTITY_FILE: _lines(f"{i} {int(v)}" for i, v in zip(ids, df["identity"])),
        BBOX_FILE: _lines([str(n), "image_id " + " ".join(BBOX_NAMES), *bbox_rows]),
    }


def _lines(lines: Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def format_kaggle_annotations(df: pd.DataFrame) -> dict[str, str]:
    """The four CSV files of the Kaggle copy for ``df`` (read_celeba's columns; identity is dropped).

    The Kaggle copy's style: header ``image_id,<names>`` (``partition`` for the split code), no count
    line, values -1/1 for attributes. ``read_celeba`` of the written files gives ``df`` back with
    identity marked missing.
    """
    text = format_annotations(df.assign(identity=0))  # checks columns and splits
    out = {}
    for name, spec in _KAGGLE_SPECS.items():
        rows = text[name].splitlines()[_SPECS[name].n_header_lines:]
        out[spec.filename] = _lines([",".join(spec.header), *(",".join(r.split()) for r in rows)])
    return out


def write_annotations(root: str | os.PathLike, df: pd.DataFrame, layout: str = OFFICIAL) -> None:
    """Write the annotation files of ``df`` into ``root`` in ``layout`` (each file atomically)."""
    from fairgen.common.io import atomic_path

    files = format_annotations(df) if layout == OFFICIAL else format_kaggle_annotations(df)
    for name, text in files.items():
        with atomic_path(Path(root) / name) as tmp:
            tmp.write_text(text)


# --------------------------------------------------------------------------------------------
# MD5, verification
# --------------------------------------------------------------------------------------------


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_celeba(root: str | os.PathLike, check_md5: bool = True,
                  files: Iterable[CelebAFile] = CELEBA_FILES) -> str:
    """Check a local CelebA copy; raise one DataError listing everything missing or corrupt.

    Finds the layout(s) in ``root`` (:func:`find_layouts`) and checks that layout's annotation
    files, the image folder (:func:`find_image_dir`) and that it holds every image the attribute
    file lists (the first missing one is named with its file and line). With ``check_md5`` the copy
    must be the official release: the official files' MD5s (and the zip's, if present) must match
    ``files``; a Kaggle copy, whose CSVs have no published MD5s, must have the release's 202,599
    rows and its split sizes (file consistency, the same ids in every file, is checked by
    :func:`read_celeba` in any case). Returns the layout used.
    """
    root = Path(root)
    layouts = find_layouts(root)
    layout = layouts[0]
    problems: list[str] = []
    by_name = {f.name: f for f in files}
    for name in layout_files(layout):
        p = root / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif check_md5 and layout == OFFICIAL and (got := md5sum(p)) != by_name[name].md5:
            problems.append(f"{name}: MD5 {got}, expected {by_name[name].md5}")
    z = root / IMAGE_ZIP
    if check_md5 and z.is_file() and (got := md5sum(z)) != by_name[IMAGE_ZIP].md5:
        problems.append(f"{IMAGE_ZIP}: MD5 {got}, expected {by_name[IMAGE_ZIP].md5}")
    img_dir = find_image_dir(root)
    spec = SPECS_BY_LAYOUT[layout][ATTR_FILE]
    try:
        attrs, first = _parse_table(root / spec.filename, spec)
    except DataError as e:
        problems.append(str(e))
        attrs = None
    if check_md5 and layout == KAGGLE and not problems:
        problems.extend(_release_counts(root, layout))
    if not img_dir.is_dir():
        problems.append(f"{IMAGE_DIR}/: missing (extract {IMAGE_ZIP} or the Kaggle archive here)")
    elif attrs is not None:
        problems.extend(_missing_images(root / spec.filename, first, attrs["image_id"], img_dir))
    if problems:
        raise DataError(f"{root}: CelebA copy ({layout} layout) is incomplete or corrupt:\n  - "
                        + "\n  - ".join(problems))
    return layout


def _release_counts(root: Path, layout: str) -> list[str]:
    """Differences between the copy's image and split counts and the official release's."""
    spec = SPECS_BY_LAYOUT[layout][PARTITION_FILE]
    try:
        part, _ = _parse_table(root / spec.filename, spec)
    except DataError as e:
        return [str(e)]
    got = {s: int((part["split"] == k).sum()) for k, s in SPLIT_CODES.items()}
    if len(part) == N_IMAGES and got == RELEASE_SPLIT_SIZES:
        return []
    want = ", ".join(f"{s} {n:,}" for s, n in RELEASE_SPLIT_SIZES.items())
    have = ", ".join(f"{s} {n:,}" for s, n in got.items())
    return [f"{spec.filename}: {len(part):,} images ({have}), the release has {N_IMAGES:,} ({want}); "
            "set dataset.check_md5: false to use a copy that is not the full release"]


def _missing_images(attr_path: Path, first: int, ids, img_dir: Path) -> list[str]:
    present = {e.name for e in os.scandir(img_dir)}
    missing = [(k, i) for k, i in enumerate(ids) if i not in present]
    if not missing:
        return []
    shown = ", ".join(i for _, i in missing[:5]) + (", ..." if len(missing) > 5 else "")
    k, i = missing[0]
    return [f"{where(attr_path.name, first + k)}: image {i} is listed but {img_dir / i} does not exist "
            f"({len(missing)} of {len(ids)} images missing ({shown}))"]


# --------------------------------------------------------------------------------------------
# Download (Google Drive through gdown, as torchvision does; transport injectable for tests)
# --------------------------------------------------------------------------------------------

GDRIVE_URL = "https://drive.google.com/uc"
Fetch = Callable[[str, Path, bool], None]
ALTERNATIVES = ("get CelebA another way: the Kaggle copy (kaggle datasets download jessicali9530/celeba-dataset, "
                "then unzip) or any local copy, and set dataset.source: celeba_local and dataset.celeba_root: "
                "FOLDER (see docs/celeba.md)")


def _one_line(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _refusal(text: str) -> str:
    """What a Drive refusal page or gdown's message says, as a short reason."""
    low = text.lower()
    if "quota" in low or "too many users" in low:
        reason = "download quota exceeded"
    elif "public link" in low:  # gdown's message when Drive offers neither the file nor a form
        reason = "no public link: the file's permission changed, or too many downloads"
    elif "permission" in low or "access denied" in low or "sign in" in low or "sign-in" in low:
        reason = "the file is not publicly downloadable (permission)"
    else:
        reason = "an HTML page instead of the file"
    title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
    return f"{reason}: {_one_line(title.group(1) if title else text, 100)!r}"


def _looks_like_html(path: Path) -> str | None:
    """The page's text if ``path`` holds an HTML page (what Drive sends instead of a refused file)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    start = head.lstrip()[:15].lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return head.decode("utf-8", errors="replace")
    return None


def gdown_fetch(url: str, dest: Path, progress: bool = True, timeout: float = 60.0) -> None:
    """Download ``url`` into ``dest`` with ``gdown`` (Drive's confirm pages, cookies, progress bar).

    A Drive URL (``https://drive.google.com/uc?id=...``) goes through gdown's Drive logic; any other
    http(s)/file URL (a mirror) is fetched as is. Raises DataError in one line when Drive refuses
    (quota page, restricted file, or an HTML page saved instead of the file), naming the
    alternatives, and when the transfer fails.
    """
    import gdown
    import requests

    refused = getattr(getattr(gdown, "exceptions", None), "FileURLRetrievalError", ())
    failed = getattr(getattr(gdown, "exceptions", None), "DownloadError", ())
    name = dest.name
    # gdown's timeout argument is recent (older releases wait forever on a stalled server)
    extra = {"timeout": timeout} if "timeout" in inspect.signature(gdown.download).parameters else {}
    try:
        gdown.download(url=url, output=str(dest), quiet=not progress, use_cookies=False, **extra)
    except refused as e:
        raise DataError(f"{name}: Google Drive refused the download ({_refusal(str(e))}); {ALTERNATIVES}") from None
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else None
        what = "refused the download" if status in (401, 403, 429) else "failed"
        raise DataError(f"{name}: {url}: download {what} (HTTP {status}); {ALTERNATIVES}") from None
    except (requests.RequestException, OSError, failed) as e:
        raise DataError(f"{name}: {url}: download failed ({_one_line(str(e))})") from None
    if not dest.is_file():
        raise DataError(f"{name}: {url}: download failed (nothing was written)")
    page = _looks_like_html(dest)
    if page is not None:
        raise DataError(f"{name}: Google Drive refused the download ({_refusal(page)}); {ALTERNATIVES}")


def download_celeba(root: str | os.PathLike, progress: bool = True, *, base_url: str = GDRIVE_URL,
                    fetch: Fetch | None = None, keep_zip: bool = True,
                    files: Iterable[CelebAFile] = CELEBA_FILES) -> Path:
    """Download the aligned CelebA release into ``root`` and extract the images.

    Each file goes to ``{base_url}?id=<drive id>&export=download`` via ``fetch(url, dest,
    progress)`` (default :func:`gdown_fetch`), is downloaded into a temporary folder in ``root``,
    MD5-verified and only then renamed into place; on a refusal by Drive or an MD5 mismatch
    nothing is kept and a DataError names the file and the alternatives. Files already present with the right MD5 are not fetched
    again. The zip is extracted atomically (into a temporary folder, then renamed) to
    ``root/img_align_celeba``; an existing folder is kept (and then a missing zip is not
    fetched). ``files`` lists names, Drive ids and MD5s (default: the official release).
    Returns ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fetch = fetch or gdown_fetch
    for f in files:
        dest = root / f.name
        if f.name == IMAGE_ZIP and (root / IMAGE_DIR).is_dir() and not dest.exists():
            log.info("%s: already extracted, not downloading the zip", root / IMAGE_DIR)
            continue
        if dest.is_file():
            if md5sum(dest) == f.md5:
                log.info("%s: present, MD5 ok", dest)
                continue
            log.warning("%s: MD5 mismatch, downloading again", dest)
        url = f"{base_url}?{urllib.parse.urlencode({'id': f.gdrive_id, 'export': 'download'})}"
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{f.name}.", suffix=".part", dir=root))
        tmp = tmp_dir / f.name  # gdown's own partial files land in tmp_dir too
        try:
            log.info("downloading %s", f.name)
            fetch(url, tmp, progress)
            got = md5sum(tmp)
            if got != f.md5:
                raise DataError(f"{dest}: MD5 of the download is {got}, expected {f.md5} "
                                f"(bad download deleted); Drive's copies change over time: {ALTERNATIVES}")
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    if not (root / IMAGE_DIR).is_dir():
        extract_images(root / IMAGE_ZIP, root)
        if not keep_zip:
            (root / IMAGE_ZIP).unlink()
    return root


def extract_images(zip_path: Path, root: Path) -> None:
    """Extract ``img_align_celeba.zip`` to ``root/img_align_celeba`` atomically."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{IMAGE_DIR}.", suffix=".tmp", dir=root))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for name in zf.namelist():
                    parts = Path(name).parts
                    if name.startswith("/") or ".." in parts or (parts and parts[0] != IMAGE_DIR):
                        raise DataError(f"{zip_path}: unexpected member {name!r} (expected {IMAGE_DIR}/...)")
                zf.extractall(tmp)
        except zipfile.BadZipFile as e:
            raise DataError(f"{zip_path}: not a valid zip file ({e})") from None
        if not (tmp / IMAGE_DIR).is_dir():
            raise DataError(f"{zip_path}: contains no {IMAGE_DIR}/ folder")
        os.replace(tmp / IMAGE_DIR, root / IMAGE_DIR)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
