"""The audit report in a real browser: headless Chromium (Debian's package) driven over the
DevTools protocol (tests/browser/cdp.py, pipe transport, stdlib only).

Checks that the page loads offline with no request other than itself and its data: images, no
failed load, no console error, that every figure decodes (naturalWidth > 0, matching the PNG),
that the key tables are there, and that nothing overflows the page horizontally. A full-page
screenshot and one of the summary card are kept as test artifacts (paths printed; under results/,
which git ignores); docs/img/audit_summary.png is a copy of the summary's.

Chromium is installed by tests/browser/ensure_chromium.sh when missing; the tests skip, with
the script's reason, only where that is impossible (no root/apt or no package mirror), and under
CI=true that skip fails the run with the same reason (tests/conftest.py).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "browser"))
import cdp  # noqa: E402
import report_inputs as ri  # noqa: E402

from fairgen.report import audit as report  # noqa: E402

REPO = HERE.parent
# the first test may wait for an apt-get install of Chromium (ensure_chromium.sh, at most 1200 s)
pytestmark = pytest.mark.timeout(1500)
ARTIFACTS = Path(os.environ.get("FAIRGEN_TEST_ARTIFACTS", REPO / "results" / "test-artifacts"))

PROBE = r"""
(() => {
  const rows = id => { const t = document.getElementById(id); return t ? t.tBodies[0].rows.length : -1; };
  const imgs = Array.from(document.images).map(i => ({
    alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
    shownWidth: i.getBoundingClientRect().width, src: i.getAttribute('src').slice(0, 22)}));
  const el = document.documentElement;
  return {
    title: document.title,
    fairest: (document.getElementById('fairest-method') || {}).textContent,
    findings: document.querySelectorAll('#findings li').length,
    rows: Object.fromEntries(['comparison-table', 'group-table', 'base-rates', 'paper-table',
                              'label-stats', 'conditioning', 'inputs'].map(id => [id, rows(id)])),
    sections: Array.from(document.querySelectorAll('section.card')).map(s => s.id),
    images: imgs,
    overflowX: el.scrollWidth - el.clientWidth,
    fonts: document.fonts.size,
    styleSheets: document.styleSheets.length,
  };
})()
"""


@pytest.fixture(scope="module")
def chromium():
    script = HERE / "browser" / "ensure_chromium.sh"
    try:
        done = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=1200)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot install chromium: {e}")
    if done.returncode != 0:
        pytest.skip(f"chromium unavailable and cannot be installed here: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    cfg = ri.tiny_cfg(methods=["real", "reweighing", "fgan_dp", "acgan"], runs=["fgan_dp", "acgan"], n_boot=40)
    paths = ri.make_inputs(root / "in", cfg)
    out = root / "out"
    report.audit(cfg, out_html=str(out / "report.html"), figures_dir=str(out / "figures"), **paths)
    return cfg, out


def _png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


def test_report_in_headless_chromium(chromium, rendered):
    cfg, out = rendered
    shot, summary_shot = ARTIFACTS / "report.png", ARTIFACTS / "audit_summary.png"
    result = cdp.inspect_page(chromium, out / "report.html", PROBE, screenshot=shot,
                              element_shots={"#summary": summary_shot})
    print(f"\nscreenshot of the audit report: {shot}; of its summary (docs/img/audit_summary.png): {summary_shot}")

    page = result["url"]
    other = [u for u in result["requests"] if u != page and not u.startswith("data:")]
    assert other == [], f"the report requested resources outside itself: {other}"
    assert result["failed"] == []
    assert result["exceptions"] == [] and result["console"] == [] and result["log_errors"] == []

    probe = result["probe"]
    assert probe["title"] == "Fairness audit: Attractive by Male"
    assert probe["fairest"] == "fgan_dp"
    assert probe["findings"] >= 4
    n_methods = len(cfg["classifier"]["methods"])
    assert probe["rows"]["comparison-table"] == n_methods
    assert probe["rows"]["group-table"] == 2 * n_methods
    assert probe["rows"]["base-rates"] == 3 + len(cfg["gan"]["runs"])
    assert probe["rows"]["paper-table"] == 8
    assert probe["rows"]["conditioning"] == 1 + len(cfg["gan"]["runs"])
    assert probe["sections"] == ["summary", "dataset", "gan", "classifiers", "tradeoff", "quality", "paper",
                                 "provenance"]
    assert probe["overflowX"] <= 0, "the page overflows horizontally at 1280 px"
    assert probe["styleSheets"] == 1

    files = {p.stem: _png_size(p) for p in (out / "figures").glob("*.png")}
    images = probe["images"]
    assert len(images) == len(files)
    for img in images:
        assert img["src"].startswith("data:image/png;base64")
        assert img["complete"] and img["naturalWidth"] > 0 and img["shownWidth"] > 0, img
    assert sorted((i["naturalWidth"], i["naturalHeight"]) for i in images) == sorted(files.values())
    assert shot.stat().st_size > 50_000 and _png_size(shot)[0] == 1280
    width, height = _png_size(summary_shot)
    assert 600 < width < 1280 and 100 < height < _png_size(shot)[1]


def test_browser_check_detects_broken_and_external_resources(chromium, tmp_path):
    """Negative control: a page with an external image and a corrupt data: image must fail each check."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>bad</title></head><body>'
                    '<img alt="external" src="http://fairgen-test.invalid/a.png">'
                    '<img alt="corrupt" src="data:image/png;base64,AAAA">'
                    '<script>console.error("boom")</script></body></html>')
    result = cdp.inspect_page(chromium, page, PROBE)
    assert "http://fairgen-test.invalid/a.png" in result["requests"]
    assert any(f["url"] == "http://fairgen-test.invalid/a.png" for f in result["failed"])
    assert result["console"]
    widths = {i["alt"]: i["naturalWidth"] for i in result["probe"]["images"]}
    assert widths == {"external": 0, "corrupt": 0}
