"""The audit-predictions report in headless Chromium (as tests/test_report_browser.py does for
the pipeline's audit): no request other than the page and its data: images, every image
decodes, the pass/fail tables are there, nothing overflows, and a group named <script> is text."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "browser"))
import cdp  # noqa: E402
from test_report_browser import _png_size, chromium  # noqa: E402,F401  (the shared Chromium fixture)

from fairgen import cli  # noqa: E402
from fairgen.report import audit_predictions as AP  # noqa: E402

ARTIFACTS = Path(os.environ.get("FAIRGEN_TEST_ARTIFACTS", HERE.parent / "results" / "test-artifacts"))

PROBE = r"""
(() => {
  const el = document.documentElement;
  return {
    title: document.title,
    passfail: Array.from(document.querySelectorAll('table[id^="passfail-"]'))
      .map(t => [t.id, t.tBodies[0].rows.length]),
    fails: document.querySelectorAll('td.verdict.fail').length,
    passes: document.querySelectorAll('td.verdict.pass').length,
    scripts: document.scripts.length,
    evil: Array.from(document.querySelectorAll('td.method')).some(td => td.textContent.includes('<script>')),
    small: document.querySelectorAll('.small-groups').length,
    images: Array.from(document.images).map(i => ({complete: i.complete, naturalWidth: i.naturalWidth,
      naturalHeight: i.naturalHeight, shownWidth: i.getBoundingClientRect().width,
      src: i.getAttribute('src').slice(0, 22)})),
    sections: Array.from(document.querySelectorAll('section.card')).map(s => s.id),
    overflowX: el.scrollWidth - el.clientWidth,
  };
})()
"""


def test_audit_predictions_report_in_headless_chromium(chromium, tmp_path):  # noqa: F811
    src = tmp_path / "two.csv"
    AP.example_predictions({}, str(src), rows=4000, seed=0, models=2)
    df = pd.read_csv(src)
    df.loc[(df.index % 4000) % 97 == 0, "race"] = "<script>alert(1)</script>"  # small group, HTML name, both models
    df.to_csv(src, index=False)
    out = tmp_path / "out"
    assert cli.main(["audit-predictions", "--predictions", str(src), "--out-dir", str(out), "--group", "race",
                     "--group", "sex", "--intersect", "--model", "model", "--compare", "model_0", "model_1",
                     "--n-boot", "100"]) == 0
    shot = ARTIFACTS / "audit_predictions.png"
    result = cdp.inspect_page(chromium, out / "report.html", PROBE, screenshot=shot)
    print(f"\nscreenshot of the audit-predictions report: {shot}")
    page = result["url"]
    assert [u for u in result["requests"] if u != page and not u.startswith("data:")] == []
    assert result["failed"] == [] and result["exceptions"] == [] and result["console"] == []
    probe = result["probe"]
    assert probe["scripts"] == 0 and probe["evil"]  # the <script> group is shown as text, never run
    assert len(probe["passfail"]) == 2 * 3  # 2 models x (race, sex, race & sex)
    assert all(rows >= 2 for _, rows in probe["passfail"])
    assert probe["fails"] + probe["passes"] > 0 and probe["small"] >= 1
    assert probe["sections"][0] == "summary" and "comparison" in probe["sections"]
    files = sorted(_png_size(p) for p in (out / "figures").glob("*.png"))
    assert len(probe["images"]) == len(files) == 6
    for img in probe["images"]:
        assert img["src"].startswith("data:image/png;base64")
        assert img["complete"] and img["naturalWidth"] > 0 and img["shownWidth"] > 0, img
    assert sorted((i["naturalWidth"], i["naturalHeight"]) for i in probe["images"]) == files
    assert probe["overflowX"] <= 0
