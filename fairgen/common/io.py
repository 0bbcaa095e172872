"""Atomic file output and versioned Parquet/JSON files.

Nothing half-written: every writer goes through :func:`atomic_path`, which hands out a
temporary sibling path and renames it over the target only when the block succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from fairgen.common.errors import DataError, FormatVersionError

# Format versions of the files fairgen writes. Bump when a reader must change.
FORMAT_VERSIONS = {
    "crops_index": 1,
    "synthetic_samples": 1,
    "predictions": 1,
    "metrics_table": 1,
    "comparison": 1,
    "gan_checkpoint": 1,
    "sweep_runs": 1,
    "sweep_summary": 1,
    "audit_metrics": 1,
}


#: Fault-injection hook for tests (never set in normal use): seconds that every :func:`atomic_path`
#: pauses after creating its temporary and again after the block has written it, before the
#: rename, so that a test can kill a process in the middle of a write (tests/test_resume_kill.py).
WRITE_DELAY_ENV = "FAIRGEN_TEST_WRITE_DELAY_S"


def _test_write_delay() -> None:
    delay = os.environ.get(WRITE_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it onto ``target`` on success.

    On an exception the temporary file/folder is removed and ``target`` is untouched. A folder
    that replaces an existing one is swapped in by two renames (the old one moved into the
    temporary, then the new one onto ``target``), so a kill at any instant leaves ``target``
    either complete (old or new) or absent, never partly deleted.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    out = tmp / target.name
    try:
        _test_write_delay()
        if is_dir:
            out.mkdir()
        yield out
        _test_write_delay()
        if is_dir and target.exists():
            os.replace(target, tmp / ".replaced")
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_temporaries(folder: str | os.PathLike, names) -> None:
    """Delete the temporaries that :func:`atomic_path` writes of ``names`` (file names, glob
    patterns allowed) into ``folder`` left behind when their process was killed. Nothing reads
    them: a write cut short before its rename leaves its target as it was."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for name in names:
        for tmp in folder.glob(f".{name}.*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: str | os.PathLike):
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: invalid JSON ({e.msg})") from None


def save_npy(array: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def write_parquet(df, path: str | os.PathLike, kind: str, metadata: dict | None = None) -> None:
    """Write ``df`` with ``fairgen.kind`` and ``fairgen.format_version`` in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"fairgen.kind"] = kind.encode()
    meta[b"fairgen.format_version"] = str(FORMAT_VERSIONS[kind]).encode()
    for k, v in (metadata or {}).items():
        meta[f"fairgen.{k}".encode()] = json.dumps(v, default=_json_default).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: str | os.PathLike, kind: str, columns: list[str] | None = None):
    """Read a fairgen Parquet file, checking kind, format version and required columns.

    Returns ``(df, metadata)`` where metadata holds the extra ``fairgen.*`` entries.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    meta = table.schema.metadata or {}
    got_kind = meta.get(b"fairgen.kind", b"").decode()
    if got_kind != kind:
        raise DataError(f"{path}: expected a fairgen '{kind}' file, found '{got_kind or 'no fairgen metadata'}'")
    version = meta.get(b"fairgen.format_version", b"").decode()
    if version != str(FORMAT_VERSIONS[kind]):
        raise FormatVersionError(
            f"{path}: format version {version or '(missing)'} of '{kind}' is not supported "
            f"(this fairgen reads version {FORMAT_VERSIONS[kind]})"
        )
    df = table.to_pandas()
    missing = [c for c in (columns or []) if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    extra = {
        k.decode()[len("fairgen."):]: json.loads(v)
        for k, v in meta.items()
        if k.startswith(b"fairgen.") and k not in (b"fairgen.kind", b"fairgen.format_version")
    }
    return df, extra
