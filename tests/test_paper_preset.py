"""config/paper.yaml end to end at tiny size: the paper preset with config/tiny.yaml's sizes on top,
run by Snakemake on a Kaggle-layout copy (the reproduction recipe of docs/celeba.md) made from the
embedded synthetic data (real CelebA is never downloaded in tests)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fairgen.common import config
from fairgen.common.io import read_json
from fairgen.data import celeba as C
from fairgen.data import procedural_celeba as S
from fairgen.data import sources

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def kaggle_synthetic(root: Path, n_images: int = 600) -> Path:
    """The embedded synthetic dataset rewritten as the Kaggle copy (CSVs, nested image folder)."""
    syn = root / "synthetic"
    cfg = config.validate({"dataset": {"synthetic": {"n_images": n_images, "workers": 1}}})
    S.make_synthetic_celeba(syn, workers=1, progress=False, **sources.synthetic_kwargs(cfg))
    kaggle = root / "celeba-dataset"
    kaggle.mkdir()
    C.write_annotations(kaggle, C.read_celeba(syn), layout=C.KAGGLE)
    shutil.copytree(syn / C.IMAGE_DIR, kaggle / C.KAGGLE_IMAGE_DIR)
    return kaggle


@pytest.mark.timeout(1500)  # two (or one) tiny workflows end to end: minutes, above the 300 s default
def test_paper_preset_runs_end_to_end_at_tiny_size(tmp_path):
    kaggle = kaggle_synthetic(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    # the recipe's own file naming the copy (tiny.yaml sets the synthetic source, so it comes last here;
    # check_md5 false: this copy is not the full release)
    mine = tmp_path / "my_celeba.yaml"
    mine.write_text(f"dataset:\n  source: celeba_local\n  celeba_root: {kaggle}\n  check_md5: false\n")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
           "--cores", "2", "--configfile", str(ROOT / "config" / "paper.yaml"), str(ROOT / "config" / "tiny.yaml"),
           str(mine)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert r.returncode == 0, f"snakemake failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"

    m = read_json(work / "results/data/dataset.json")
    assert (m["layout"], m["source"], m["n_images"]) == ("kaggle", "celeba_local", 600)
    assert m["split"]["method"] == "random" and m["splits"] == {"test": 60, "valid": 54, "train": 486}
    # The GAN runs used the paper's model (the tiny sizes on top).
    for run in ("fgan_dp", "fgan_eqopp"):
        model = json.loads((work / f"results/gan/{run}/summary.json").read_text())["config"]
        assert (model["penalty"], model["y_from_c"], model["y_path"]) == ("cy_head", False, "noise")
        assert (model["lambda_fair"], model["lambda_cx"], model["lambda_yx"], model["lambda_label"]) == (1, 1, 0, 0)
        assert not (model["sx_given_c"] or model["sj_given_c"] or model["mbstd_group"] or model["diffaugment"])
    assert not (work / "results/gan/acgan").exists()
    # The audit sets our four methods beside the paper's Table 1, in the paper's metrics, and names the split.
    html = (work / "results/audit/report.html").read_text()
    paper = html[html.index('id="paper"'):]
    for method in ("real", "reweighing", "fgan_dp", "fgan_eqopp"):
        assert f"ours ({method})" in paper and f"ours: &#39;{method}&#39; not evaluated" not in paper
    for column in ("FPR (c=0)", "FNR (c=1)", "err (c=0)", "Error rate", "EO diff."):
        assert column in paper
    assert re.search(r'<p id="paper-split">Split used here: random by image \(seed \d+\): test 10% of all images, '
                     r"valid 10% of the rest for model selection", paper)
