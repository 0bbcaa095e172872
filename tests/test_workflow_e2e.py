"""End-to-end: the Snakemake workflow on the tiny config (config/tiny.yaml) in a temp folder:
the data rules alone, then the whole default target ``all`` (every rule)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fairgen.common.io import read_parquet

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def snakemake(workdir, *args, check=True, timeout=900, cores=2):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(ROOT / "config" / "tiny.yaml"), "--cores", str(cores), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                       timeout=timeout)
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
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Congratulations" in r.stdout + r.stderr


# ------------------------------------------------------------------------------ the whole DAG

#: every rule of the default target with the tiny config (zoo.in_all is false there)
ALL_RULES = {"dataset", "crops", "train_gan", "generate", "train_classifier", "metrics_table",
             "compare_classifiers", "quality", "threshold_baseline", "frontier", "audit", "all"}


@pytest.fixture(scope="module")
def whole_dag(tmp_path_factory):
    """``snakemake --cores 2 --configfile config/tiny.yaml`` (the default target, all) in a temp
    folder; returns the folder and the wall time."""
    work = tmp_path_factory.mktemp("e2e_all")
    t0 = time.monotonic()
    r = snakemake(work, timeout=1500)
    wall = time.monotonic() - t0
    print(f"\nwhole DAG on config/tiny.yaml with --cores 2: {wall:.0f} s wall")
    assert "Nothing to be done" not in r.stdout + r.stderr
    return work, wall


@pytest.mark.timeout(1800)
def test_all_target_runs_every_rule_and_writes_every_declared_output(whole_dag):
    work, _ = whole_dag
    r = snakemake(work, "--summary")
    lines = [line.split("\t") for line in r.stdout.splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    assert header[:3] == ["output_file", "date", "rule"], header
    col = {name: i for i, name in enumerate(header)}
    assert {row[col["rule"]] for row in rows} == ALL_RULES - {"all"}
    for row in rows:
        output = work / row[col["output_file"]]
        assert output.exists(), output
        assert output.is_dir() or output.stat().st_size > 0, output
        for log in row[col["log-file(s)"]].split(","):
            assert log == "-" or (work / log.strip()).is_file(), (output, log)
        assert row[col["status"]] == "ok" and row[col["plan"]] == "no update", row
    # the default target's own list, independently of the summary
    for target in ("results/audit/report.html", "results/quality/quality.json", "results/quality/summary.tsv",
                   "results/classifiers/metrics_table.parquet", "results/classifiers/comparison.csv"):
        assert (work / target).is_file(), target


def test_audit_classifier_table_shows_each_metrics_json(whole_dag):
    """Row by row and cell by cell: the audit's classifier table holds the numbers (and their
    bootstrap intervals) of the metrics.json that each train_classifier job wrote."""
    from html_tables import assert_row_shows_metrics, rows_by_first_cell

    work, _ = whole_dag
    header, rows = rows_by_first_cell((work / "results/audit/report.html").read_text(encoding="utf-8"),
                                      "comparison-table")
    methods = sorted(p.parent.name for p in (work / "results/classifiers").glob("*/metrics.json"))
    assert sorted(rows) == methods and len(methods) == 5
    for method in methods:
        assert_row_shows_metrics(header, rows[method],
                                 json.loads((work / "results/classifiers" / method / "metrics.json").read_text()))


def test_all_target_rerun_has_nothing_to_do(whole_dag):
    work, _ = whole_dag
    r = snakemake(work, "-n")
    assert "Nothing to be done" in r.stdout + r.stderr, r.stdout[-3000:]


def test_audit_run_cost_table_lists_every_job_it_reads(whole_dag):
    """The audit's run-cost table: one row per upstream job, from the benchmark file each wrote."""
    from html_tables import rows_by_first_cell

    work, _ = whole_dag
    bench = work / "results/benchmarks"
    _, rows = rows_by_first_cell((work / "results/audit/report.html").read_text(encoding="utf-8"), "run-cost")
    jobs = {p.relative_to(bench).with_suffix("").as_posix() for p in bench.rglob("*.tsv")}
    # every job but the audit itself and the metrics table (which the audit does not read)
    assert set(rows) == jobs - {"audit", "metrics_table"} | {"all jobs"}
    assert {"train_gan/fgan_dp", "classifiers/real", "crops"} <= set(rows)


@pytest.mark.timeout(1800)
def test_results_do_not_depend_on_the_core_count(whole_dag, tmp_path_factory):
    """The same config with --cores 1 gives a byte-identical metrics table to the --cores 2 run:
    every torch job runs config key `threads` (1) threads, whatever --cores gives it."""
    work, _ = whole_dag
    one = tmp_path_factory.mktemp("e2e_one_core")
    snakemake(one, "results/classifiers/metrics_table.csv", cores=1, timeout=1500)
    table = "results/classifiers/metrics_table.csv"
    assert (one / table).read_bytes() == (work / table).read_bytes()
    for run in ("fgan_dp", "fgan_eqopp", "acgan"):
        assert json.loads((one / "results/gan" / run / "summary.json").read_text())["threads"] == 1
