"""End-to-end: the Snakemake workflow on the tiny config (config/tiny.yaml) in a temp folder."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fairgen.io import read_parquet

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def snakemake(workdir, *args, check=True):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(ROOT / "config" / "tiny.yaml"), "--cores", "2", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if check and r.returncode != 0:
        raise AssertionError(f"snakemake failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}")
    return r


@pytest.fixture(scope="module")
def data_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e_data")
    snakemake(work, "results/data/index.parquet", "results/data/crops_summary.json")
    return work


def test_data_rules_produce_crops(data_run):
    manifest = json.loads((data_run / "results/data/dataset.json").read_text())
    assert manifest["source"] == "synthetic" and manifest["n_images"] == 600
    arr = np.load(data_run / "results/data/crops.npy", mmap_mode="r")
    assert arr.shape == (600, 32, 32, 3) and arr.dtype == np.uint8
    index, meta = read_parquet(data_run / "results/data/index.parquet", "crops_index")
    assert len(index) == 600 and set(index["split"]) == {"train", "valid", "test"}
    assert (data_run / "results/data/previews/grid.png").exists()
    assert (data_run / "results/logs/dataset.log").exists() and (data_run / "results/logs/crops.log").exists()
    # The synthetic data carries the configured bias: P(Attractive|female) > P(Attractive|male).
    rates = index.groupby("Male")["Attractive"].mean()
    assert rates[0] - rates[1] > 0.2


def test_rerun_is_a_no_op(data_run):
    r = snakemake(data_run, "results/data/index.parquet", "-n")
    assert "Nothing to be done" in (r.stdout + r.stderr)


def test_lint_is_clean():
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--lint"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Congratulations" in r.stdout + r.stderr
