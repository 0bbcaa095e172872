"""Rendering helpers shared by every HTML report (the audit, the predictions audit, the sweep and
the zoo pages): the Jinja environment over ``fairgen/report/templates/`` with the inline
stylesheet, number and table-cell formatting, embedded figures (:class:`Figure`, PNG bytes shown
as ``data:`` URIs) and the SHA-256 of input files for provenance tables."""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairgen.common.errors import DataError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
STYLESHEET = "audit.css"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL_IMAGE_PX = 320


def fmt(v, digits: int = 3) -> str:
    """A number for a table cell; an em dash for a missing value."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "\u2014"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{int(v):,}"
    return f"{float(v):.{digits}f}"


def fmt_ci(lo, hi, digits: int = 3) -> str:
    """An interval ``[lo, hi]`` for the line under a cell's value; empty when either end is missing."""
    if lo is None or hi is None:
        return ""
    return f"[{float(lo):.{digits}f}, {float(hi):.{digits}f}]"


def level_text(level: float | None) -> str:
    """A confidence level as the prefix of a phrase ("95% "); empty when there is none."""
    return f"{round(level * 100):d}% " if level else ""


def finite(v) -> float | None:
    """``v`` as a float, or None when it is missing or not finite."""
    return None if v is None or not math.isfinite(float(v)) else float(v)


def cell(text: str, sub: str = "", cls: str = "", title: str = "") -> dict:
    """One table cell for the ``table`` macro of ``macros.html.j2``: its text, the smaller line under
    it (e.g. an interval), its CSS class and its tooltip."""
    return {"text": text, "sub": sub, "cls": cls, "title": title}


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (hex digest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass
class Figure:
    """A figure of a report: PNG bytes inlined as a data URI (and, in the audit, written to its
    figures folder as ``name.png``)."""

    name: str  # file stem in the figures folder
    title: str
    caption: str
    png: bytes

    @property
    def uri(self) -> str:
        return data_uri(self.png)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, from the PNG header."""
        if len(self.png) < 24 or not self.png.startswith(PNG_MAGIC):
            raise DataError(f"figure '{self.name}': not a PNG image")
        return int.from_bytes(self.png[16:20], "big"), int.from_bytes(self.png[20:24], "big")

    @property
    def small(self) -> bool:
        """A raw sample grid too small to look at 1:1; shown enlarged with crisp pixels."""
        return self.size[0] < SMALL_IMAGE_PX


def render_html(context: dict, template: str) -> str:
    """Render ``templates/<template>`` with ``context`` and the shared stylesheet (as ``css``):
    autoescaped, undefined names are errors."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(("html", "j2")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    css = (TEMPLATE_DIR / STYLESHEET).read_text(encoding="utf-8")
    return env.get_template(template).render(css=css, **context)
