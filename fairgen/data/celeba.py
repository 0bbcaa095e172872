"""CelebA (aligned release): file list, download, verification and one strict annotation parser.

Layout of a CelebA root (the same for the real download and the embedded synthetic dataset)::

    root/img_align_celeba/000001.jpg ...        178x218 aligned faces
    root/list_attr_celeba.txt                   count line, 40 names, rows of -1/1
    root/list_landmarks_align_celeba.txt        count line, 10 landmark names, rows of ints
    root/list_eval_partition.txt                rows "000001.jpg 0" (0/1/2 = train/valid/test)
    root/identity_CelebA.txt                    rows "000001.jpg 2880"
    root/list_bbox_celeba.txt                   count line, "image_id x_1 y_1 width height", rows

:func:`read_celeba` parses all five annotation files with the pandas C parser (fast path) and,
whenever anything looks wrong, re-reads the offending file line by line so that the
:class:`~fairgen.errors.DataError` names the file and the exact line.
"""

from __future__ import annotations

import hashlib
import html.parser
import io
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from fairgen.errors import DataError, where

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
    ATTR_FILE: _Spec(ATTR_FILE, ATTRIBUTE_NAMES, True, ATTRIBUTE_NAMES, "attribute", allowed=(-1, 1)),
    LANDMARKS_FILE: _Spec(LANDMARKS_FILE, LANDMARK_NAMES, True, LANDMARK_NAMES, "landmark"),
    PARTITION_FILE: _Spec(PARTITION_FILE, ("split",), False, None, "split code", allowed=tuple(SPLIT_CODES)),
    IDENTITY_FILE: _Spec(IDENTITY_FILE, ("identity",), False, None, "identity", minimum=0),
    BBOX_FILE: _Spec(BBOX_FILE, BBOX_NAMES, True, ("image_id", *BBOX_NAMES), "bbox value", minimum=0),
}


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
        got = tuple(head[line_no - 1].split())
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
                df = pd.read_csv(io.StringIO(body), sep=r"\s+", header=None, names=[*names, "_extra"],
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
              if spec.filename == ATTR_FILE else np.zeros(0, bool))
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
        tokens = line.split()
        if not tokens:
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


def read_celeba(root: str | os.PathLike) -> pd.DataFrame:
    """Parse the five annotation files of a CelebA root into one frame (one row per image).

    Columns (in this order): ``image_id`` (str, '000001.jpg'), ``split`` ('train'/'valid'/'test'),
    the 40 attributes (int8 0/1), the 10 aligned landmarks (int32), ``identity`` (int32) and
    ``bbox_x_1 bbox_y_1 bbox_width bbox_height`` (int32; these boxes refer to the in-the-wild
    images, not the aligned ones). Rows follow ``list_attr_celeba.txt``. Raises DataError naming
    file and line for any malformed, inconsistent or missing input.
    """
    root = Path(root)
    attr_path = root / ATTR_FILE
    attrs, attr_first = _parse_table(attr_path, _SPECS[ATTR_FILE])
    ref_ids = pd.Index(attrs["image_id"].to_numpy(dtype=object))
    n = len(ref_ids)
    out: dict[str, object] = {"image_id": attrs["image_id"].to_numpy(dtype=object)}
    tables = {}
    for name in (LANDMARKS_FILE, PARTITION_FILE, IDENTITY_FILE, BBOX_FILE):
        path = root / name
        df, first = _parse_table(path, _SPECS[name])
        tables[name] = df.iloc[_align(path, df, first, ref_ids, attr_path, attr_first)]
    split_codes = tables[PARTITION_FILE]["split"].to_numpy()
    out["split"] = np.asarray(SPLITS, dtype=object)[split_codes] if n else np.array([], dtype=object)
    for a in ATTRIBUTE_NAMES:
        out[a] = (attrs[a].to_numpy() > 0).astype(np.int8)
    for c in LANDMARK_NAMES:
        out[c] = tables[LANDMARKS_FILE][c].to_numpy().astype(np.int32)
    out["identity"] = tables[IDENTITY_FILE]["identity"].to_numpy().astype(np.int32)
    for c, b in zip(BBOX_NAMES, BBOX_COLUMNS):
        out[b] = tables[BBOX_FILE][c].to_numpy().astype(np.int32)
    frame = pd.DataFrame(out, columns=list(COLUMNS))
    frame["image_id"] = frame["image_id"].astype(str)  # pandas' default string dtype
    frame["split"] = frame["split"].astype(str)
    return frame


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


def write_annotations(root: str | os.PathLike, df: pd.DataFrame) -> None:
    """Write the five annotation files of ``df`` into ``root`` (each atomically)."""
    from fairgen.io import atomic_path

    for name, text in format_annotations(df).items():
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
                  files: Iterable[CelebAFile] = CELEBA_FILES) -> None:
    """Check a local CelebA copy; raise one DataError listing everything missing or corrupt.

    Checks the five annotation files (and their MD5s when ``check_md5``), the image folder, and
    that it holds as many images as ``list_attr_celeba.txt`` announces (names of up to 5 missing
    images are listed). The zip is not needed once extracted; if present and ``check_md5``, its MD5
    is checked too. ``files`` gives the expected MD5s (default: the official release).
    """
    root = Path(root)
    problems: list[str] = []
    if not root.is_dir():
        raise DataError(f"{root}: CelebA root folder not found")
    by_name = {f.name: f for f in files}
    for name in ANNOTATION_FILES:
        p = root / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif check_md5 and (got := md5sum(p)) != by_name[name].md5:
            problems.append(f"{name}: MD5 {got}, expected {by_name[name].md5}")
    z = root / IMAGE_ZIP
    if check_md5 and z.is_file() and (got := md5sum(z)) != by_name[IMAGE_ZIP].md5:
        problems.append(f"{IMAGE_ZIP}: MD5 {got}, expected {by_name[IMAGE_ZIP].md5}")
    img_dir = root / IMAGE_DIR
    if not img_dir.is_dir():
        problems.append(f"{IMAGE_DIR}/: missing (extract {IMAGE_ZIP} here)")
    elif (root / ATTR_FILE).is_file():
        problems.extend(_missing_images(root))
    if problems:
        raise DataError(f"{root}: CelebA copy is incomplete or corrupt:\n  - " + "\n  - ".join(problems))


def _missing_images(root: Path) -> list[str]:
    try:
        attrs, _ = _parse_table(root / ATTR_FILE, _SPECS[ATTR_FILE])
    except DataError as e:
        return [str(e)]
    present = {e.name for e in os.scandir(root / IMAGE_DIR)}
    missing = [i for i in attrs["image_id"] if i not in present]
    if not missing:
        return []
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    return [f"{IMAGE_DIR}/: {len(missing)} of {len(attrs)} images missing ({shown})"]


# --------------------------------------------------------------------------------------------
# Download (Google Drive over HTTPS, stdlib only; transport injectable for tests)
# --------------------------------------------------------------------------------------------

GDRIVE_URL = "https://drive.google.com/uc"
Fetch = Callable[[str, Path, bool], None]


class _DriveForm(html.parser.HTMLParser):
    """Finds Google Drive's 'download anyway' form (virus-scan warning page) and its inputs."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.inputs: dict[str, str] = {}
        self.title = ""
        self._in_form = False
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and ("download" in (a.get("id") or "") or "download" in (a.get("action") or "")):
            self.action, self._in_form = a.get("action"), True
        elif tag == "input" and self._in_form and a.get("name"):
            self.inputs[a["name"]] = a.get("value") or ""
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def drive_confirm_url(page: str, url: str) -> str | None:
    """The URL that confirms a Google Drive download from its warning page, or None.

    Handles the current page (a form to drive.usercontent.google.com with hidden id/export/
    confirm/uuid inputs) and the older one (a link carrying ``confirm=TOKEN``).
    """
    form = _DriveForm()
    form.feed(page)
    if form.action:
        target = urllib.parse.urljoin(url, form.action)
        return f"{target}?{urllib.parse.urlencode(form.inputs)}" if form.inputs else target
    m = re.search(r"confirm=([0-9A-Za-z_-]+)", page)
    if m:
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query["confirm"] = m.group(1)
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return None


def http_fetch(url: str, dest: Path, progress: bool = True, timeout: float = 60.0) -> None:
    """Stream ``url`` into ``dest`` with a tqdm bar, following Google Drive's confirm page.

    Works for any http(s)/file URL; raises DataError when the server answers with an HTML page
    that is not a Drive confirmation (e.g. 'quota exceeded').
    """
    from tqdm import tqdm

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    headers = {"User-Agent": "fairgen (python urllib)"}
    try:
        resp = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
        for _ in range(2):
            if not resp.headers.get("Content-Type", "").startswith("text/html"):
                break
            page = resp.read(4 << 20).decode("utf-8", errors="replace")
            resp.close()
            nxt = drive_confirm_url(page, resp.geturl())
            if nxt is None:
                form = _DriveForm()
                form.feed(page)
                hint = " (Google Drive download quota exceeded; try again later)" if "quota" in page.lower() else ""
                raise DataError(f"{url}: server returned an HTML page instead of the file: "
                                f"{form.title.strip()[:100]!r}{hint}")
            resp = opener.open(urllib.request.Request(nxt, headers=headers), timeout=timeout)
        else:
            raise DataError(f"{url}: still an HTML page after confirming the download")
        total = int(resp.headers.get("Content-Length") or 0) or None
        with resp, open(dest, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                               desc=dest.name.lstrip(".").split(".part")[0],
                                               disable=not progress, file=sys.stderr) as bar:
            while block := resp.read(1 << 20):
                f.write(block)
                bar.update(len(block))
    except OSError as e:  # URLError, HTTPError, timeouts, connection resets
        raise DataError(f"{url}: download failed ({e})") from None


def download_celeba(root: str | os.PathLike, progress: bool = True, *, base_url: str = GDRIVE_URL,
                    fetch: Fetch | None = None, keep_zip: bool = True,
                    files: Iterable[CelebAFile] = CELEBA_FILES) -> Path:
    """Download the aligned CelebA release into ``root`` and extract the images.

    Each file goes to ``{base_url}?id=<drive id>&export=download`` via ``fetch(url, dest,
    progress)`` (default :func:`http_fetch`), is streamed into a temporary file in ``root``,
    MD5-verified and only then renamed into place; on an MD5 mismatch the download is deleted
    and a DataError names the file. Files already present with the right MD5 are not fetched
    again. The zip is extracted atomically (into a temporary folder, then renamed) to
    ``root/img_align_celeba``; an existing folder is kept (and then a missing zip is not
    fetched). ``files`` lists names, Drive ids and MD5s (default: the official release).
    Returns ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fetch = fetch or http_fetch
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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{f.name}.", suffix=".part", dir=root)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            log.info("downloading %s", f.name)
            fetch(url, tmp, progress)
            got = md5sum(tmp)
            if got != f.md5:
                raise DataError(f"{dest}: MD5 of the download is {got}, expected {f.md5} "
                                "(bad download deleted)")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
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
