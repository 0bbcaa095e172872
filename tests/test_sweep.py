"""The sweep: aggregation across seeds (fairgen.eval.sweep) on fixture metrics, the report, and the
`snakemake -n sweep` DAG (job counts per rule, the point values each job passes, the layout)."""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fairgen.cli import main as cli_main
from fairgen.common.errors import DataError
from fairgen.common.io import read_parquet, write_json
from fairgen.eval import fairness, sweep

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- fixture metrics


def _result(seed: int, method: str, protected="Male", outcome="Attractive", n=400, noise=0.3) -> dict:
    """A real fairness.evaluate result of a noisy classifier, as train-classifier writes it."""
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 2, n)
    y = (rng.random(n) < np.where(c == 1, 0.3, 0.6)).astype(int)
    score = np.clip(0.3 * y + rng.random(n) * (0.4 + noise) + 0.1 * c, 0, 1)
    out = fairness.evaluate(y, (score >= 0.5).astype(int), c, score=score, n_boot=20, seed=seed)
    out.update({"method": method, "protected": protected, "outcome": outcome})
    return out


def _write_point(root: Path, pair: str, seed: int, lam, method: str, result: dict) -> Path:
    point = f"{pair}/s{seed}" + ("" if lam is None else f"/l{format(lam, 'g')}")
    path = root / point / "classifiers" / method / "metrics.json"
    write_json(result, path)
    return path


@pytest.fixture
def fixture_sweep(tmp_path):
    """3 seeds; 'real' (lambda-free) and 'fgan_dp' at lambda 0.5 and 2 for Male-Attractive;
    'real' for a second pair with one seed only."""
    root = tmp_path / "sweep"
    paths, results = [], {}
    for seed in (0, 1, 2):
        for method, lam, noise in (("real", None, 0.3), ("fgan_dp", 0.5, 0.4), ("fgan_dp", 2.0, 0.5)):
            r = _result(100 * seed + int(10 * (lam or 0)), method, noise=noise)
            results[(seed, method, lam)] = r
            paths.append(_write_point(root, "Male-Attractive", seed, lam, method, r))
    r = _result(7, "real", "Young", "Smiling")
    results["young"] = r
    paths.append(_write_point(root, "Young-Smiling", 3, None, "real", r))
    return root, paths, results


# ---------------------------------------------------------------------------- paths


def test_parse_metrics_path_both_forms():
    assert sweep.parse_metrics_path("results/sweep/Male-Attractive/s2/l0.5/classifiers/fgan_dp/metrics.json") == {
        "protected": "Male", "outcome": "Attractive", "lambda_fair": 0.5, "method": "fgan_dp", "seed": 2}
    assert sweep.parse_metrics_path("/abs/Heavy_Makeup-Smiling/s10/classifiers/real/metrics.json") == {
        "protected": "Heavy_Makeup", "outcome": "Smiling", "lambda_fair": None, "method": "real", "seed": 10}
    assert sweep.parse_metrics_path("x/A-B/s0/l1e-05/classifiers/acgan/metrics.json")["lambda_fair"] == 1e-5
    for bad in ("results/classifiers/real/metrics.json", "x/Male-Attractive/0/classifiers/real/metrics.json",
                "x/Male-Attractive/s0/l1.2.3/classifiers/real/metrics.json",
                "x/Male-Attractive/s0/classifiers/real/predictions.parquet"):
        with pytest.raises(DataError, match=re.escape(bad)):
            sweep.parse_metrics_path(bad)


# ---------------------------------------------------------------------------- aggregation


def test_aggregate_mean_and_std_across_seeds(fixture_sweep, tmp_path):
    root, paths, results = fixture_sweep
    out = tmp_path / "out"
    rc = cli_main(["sweep-aggregate", "--metrics", *map(str, paths), "--out-runs", str(out / "runs.parquet"),
                   "--out-summary", str(out / "summary.parquet"), "--out-csv", str(out / "summary.csv")])
    assert rc == 0
    runs, meta = read_parquet(out / "runs.parquet", "sweep_runs")
    summary, _ = read_parquet(out / "summary.parquet", "sweep_summary")
    assert meta["sources"] == [str(p) for p in paths]
    assert len(runs) == len(paths)
    # one summary row per (pair, lambda, method) group and metric
    groups = {("Male", "Attractive", None, "real"), ("Male", "Attractive", 0.5, "fgan_dp"),
              ("Male", "Attractive", 2.0, "fgan_dp"), ("Young", "Smiling", None, "real")}
    metrics = list(fairness.flatten(results[(0, "real", None)]))
    assert len(summary) == len(groups) * len(metrics)
    assert set(summary["metric"]) == set(metrics)

    for method, lam in (("real", None), ("fgan_dp", 0.5), ("fgan_dp", 2.0)):
        sel = (summary["protected"] == "Male") & (summary["method"] == method)
        sel &= summary["lambda_fair"].isna() if lam is None else summary["lambda_fair"] == lam
        rows = summary[sel].set_index("metric")
        for metric in ("accuracy", "demographic_parity_difference", "equal_opportunity_difference", "auc",
                       "tpr_c1", "disparate_impact"):
            values = np.array([fairness.flatten(results[(s, method, lam)])[metric] for s in (0, 1, 2)], float)
            row = rows.loc[metric]
            assert row["n_seeds"] == 3
            assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert row["std"] == pytest.approx(np.sqrt(((values - values.mean()) ** 2).sum() / 2), rel=1e-12)
            assert (row["min"], row["max"]) == (values.min(), values.max())
    # a group seen with one seed: mean is the value, no spread
    young = summary[summary["protected"] == "Young"].set_index("metric").loc["accuracy"]
    assert young["n_seeds"] == 1 and math.isnan(young["std"])
    assert young["mean"] == results["young"]["overall"]["accuracy"]
    # the CSV is the same table
    csv = pd.read_csv(out / "summary.csv")
    pd.testing.assert_frame_equal(csv, summary, check_dtype=False)


def test_undefined_metric_counts_only_defined_seeds(fixture_sweep, tmp_path):
    root, paths, results = fixture_sweep
    r = results[(1, "real", None)]
    r["fairness"]["equal_opportunity_difference"] = None  # as evaluate(allow_undefined=True) writes it
    write_json(r, paths[3])
    runs = sweep.collect(paths)
    s = sweep.summarize(runs)
    row = s[(s["method"] == "real") & (s["protected"] == "Male")
            & (s["metric"] == "equal_opportunity_difference")].iloc[0]
    kept = [results[(k, "real", None)]["fairness"]["equal_opportunity_difference"] for k in (0, 2)]
    assert row["n_seeds"] == 2 and row["mean"] == pytest.approx(np.mean(kept))
    assert row["std"] == pytest.approx(np.std(kept, ddof=1))


def test_collect_rejects_inconsistent_inputs(fixture_sweep, tmp_path):
    root, paths, results = fixture_sweep
    with pytest.raises(DataError, match="same sweep run"):
        sweep.collect([paths[0], paths[0]])
    wrong = _write_point(root, "Male-Attractive", 9, None, "reweighing", _result(1, "real"))
    with pytest.raises(DataError, match=r"method 'real' but its path says 'reweighing'"):
        sweep.collect([wrong])
    wrong = _write_point(root, "Male-Smiling", 9, None, "real", _result(1, "real"))
    with pytest.raises(DataError, match=r"Male-Smiling.*outcome 'Attractive' but its path says 'Smiling'"):
        sweep.collect([wrong])
    broken = _write_point(root, "Male-Attractive", 8, None, "real", {"method": "real", "overall": {}})
    with pytest.raises(DataError, match=re.escape(str(broken))):
        sweep.collect([broken])
    # the CLI turns these into exit code 2 with the message
    assert cli_main(["sweep-aggregate", "--metrics", str(broken), "--out-runs", str(tmp_path / "r.parquet"),
                     "--out-summary", str(tmp_path / "s.parquet"), "--out-csv", str(tmp_path / "s.csv")]) == 2
    assert not (tmp_path / "r.parquet").exists()


def test_report_shows_mean_and_spread(fixture_sweep, tmp_path):
    root, paths, results = fixture_sweep
    runs = sweep.collect(paths)
    from fairgen.common.io import write_parquet

    write_parquet(runs, tmp_path / "runs.parquet", "sweep_runs", metadata={"sources": [str(p) for p in paths]})
    assert cli_main(["sweep-report", "--runs", str(tmp_path / "runs.parquet"),
                     "--out-html", str(tmp_path / "report.html")]) == 0
    html = (tmp_path / "report.html").read_text()
    acc = np.array([results[(s, "fgan_dp", 2.0)]["overall"]["accuracy"] for s in (0, 1, 2)])
    assert f"{acc.mean():.3f} \u00b1 {acc.std(ddof=1):.3f}" in html
    assert f"[{acc.min():.3f}, {acc.max():.3f}]" in html
    assert 'id="pair-Male-Attractive"' in html and 'id="pair-Young-Smiling"' in html
    # rows: methods lambda_fair does not affect first, then each method by lambda
    table = re.search(r'<table id="table-pair-Male-Attractive">.*?</table>', html, re.S)[0]
    rows = re.findall(r'<tr><td class="method"[^>]*>(\w+)</td><td class="num"[^>]*>([^<]+)</td>', table)
    assert rows == [("real", "\u2014"), ("fgan_dp", "0.5"), ("fgan_dp", "2")]
    assert html.count('src="data:image/png;base64,') == 2
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # self-contained
    for p in paths:
        assert str(p) in html  # provenance


# ---------------------------------------------------------------------------- the DAG (dry run)

SWEEP_CONFIG = {
    "sweep": {
        "seeds": [0, 1],
        "lambda_fair": [0.5, 2.0],
        "pairs": [{"protected": "Male", "outcome": "Attractive"}, {"protected": "Young", "outcome": "Smiling"}],
    }
}


def _dry_run(workdir: Path, *configfiles, target="sweep") -> str:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(ROOT / "config" / "tiny.yaml"), *map(str, configfiles), "--cores", "2",
           "-n", "-p", target]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _jobs(text: str) -> list[dict]:
    """The jobs of a `snakemake -n -p` output: rule, wildcards, output, shell command."""
    jobs = []
    for block in re.split(r"\n\s*\n", text):
        m = re.search(r"^(?:local)?rule (\w+):$", block, re.M)
        if not m:
            continue
        job = {"rule": m[1]}
        for key in ("output", "input", "wildcards", "log"):
            km = re.search(rf"^\s+{key}: (.*)$", block, re.M)
            job[key] = km[1] if km else ""
        sm = re.search(r"^Shell command: (.*)$", block, re.M)
        job["shell"] = sm[1] if sm else ""
        job["wildcards"] = dict(w.split("=", 1) for w in job["wildcards"].split(", ") if w)
        jobs.append(job)
    return jobs


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    work = tmp_path_factory.mktemp("sweep_dry")
    cfg = work / "sweep.yaml"
    cfg.write_text(yaml.safe_dump(SWEEP_CONFIG))
    return _jobs(_dry_run(work, cfg))


def _cfg_of(job) -> dict:
    args = shlex.split(job["shell"].split(">")[0])
    return json.loads(args[args.index("--config-json") + 1])


def test_dry_run_job_counts(dry):
    from fairgen.common.config import load
    from fairgen.stages.train_gan import RUN_VARIANTS

    cfg = load(ROOT / "config" / "tiny.yaml")
    methods, runs = cfg["classifier"]["methods"], cfg["gan"]["runs"]
    free_runs = {r for r, v in RUN_VARIANTS.items() if v == "none"}
    n_pairs, n_seeds, n_lams = 2, 2, 2
    lam_runs = [r for r in runs if r not in free_runs]
    method_runs = {m: [m] if m in RUN_VARIANTS else [] for m in methods}
    lam_methods = [m for m in methods if any(r not in free_runs for r in method_runs[m])]
    counts = pd.Series([j["rule"] for j in dry]).value_counts().to_dict()
    assert counts == {
        # the main pair (Male, Attractive; the config's) shares results/data; the other gets its own
        "dataset": 1, "crops": 1, "sweep_dataset": 1, "sweep_crops": 1,
        "sweep_train_gan": n_pairs * n_seeds * (len(runs) - len(lam_runs) + n_lams * len(lam_runs)),
        "sweep_generate": n_pairs * n_seeds * (len(runs) - len(lam_runs) + n_lams * len(lam_runs)),
        "sweep_train_classifier": n_pairs * n_seeds * (len(methods) - len(lam_methods) + n_lams * len(lam_methods)),
        "sweep_aggregate": 1, "sweep_report": 1, "sweep": 1,
    }
    assert counts["sweep_train_gan"] == 20 and counts["sweep_train_classifier"] == 28  # tiny.yaml's 3 runs, 5 methods


def test_dry_run_jobs_carry_their_point(dry):
    from fairgen.stages.train_gan import RUN_VARIANTS

    main_seed = 0
    for job in dry:
        if not job["rule"].startswith("sweep_") or job["rule"] in ("sweep_aggregate", "sweep_report"):
            continue
        cfg = _cfg_of(job)
        wc = job["wildcards"]
        pair = (wc.get("point") or wc["pair"]).split("/")[0]
        if "protected" in cfg:
            assert f"{cfg['protected']}-{cfg['outcome']}" == pair, job
        if "pair" in wc:  # data rules: the real data keeps the main seed, in a folder of its own
            assert cfg["seed"] == main_seed, job
            assert cfg["dataset"]["synthetic_root"] == f"resources/synthetic_celeba-{pair}", job
            continue
        parts = wc["point"].split("/")
        assert cfg["seed"] == int(parts[1][1:]), job
        if job["rule"] == "sweep_train_gan":
            lam_free = RUN_VARIANTS[wc["run"]] == "none"
            assert (len(parts) == 2) == lam_free, job  # lambda-free runs are trained once per (pair, seed)
            if not lam_free:
                assert cfg["gan"]["lambda_fair"] == float(parts[2][1:]), job
        # every file a sweep job names lies in the sweep's folders or is the main pair's real data
        for path in re.findall(r"results/[^\s'\"]+", job["shell"] + " " + job["output"] + " " + job["input"]):
            assert path.startswith(("results/sweep/", "results/logs/sweep/", "results/data/")), (path, job)
            if path.startswith("results/data/"):
                assert pair == "Male-Attractive", (path, job)


def test_dry_run_aggregate_inputs_cover_the_sweep(dry):
    from fairgen.common.config import load

    methods = load(ROOT / "config" / "tiny.yaml")["classifier"]["methods"]
    (agg,) = [j for j in dry if j["rule"] == "sweep_aggregate"]
    args = shlex.split(agg["shell"].split(">")[0])
    files = args[args.index("--metrics") + 1:args.index("--out-runs")]
    points = {tuple(sweep.parse_metrics_path(f)[k] for k in sweep.RUN_KEYS) for f in files}
    assert len(points) == len(files)
    # every (pair, seed, method) is there; with every lambda exactly for the lambda-dependent methods
    for (p, o), seed, method in product((("Male", "Attractive"), ("Young", "Smiling")), (0, 1), methods):
        lams = {pt[2] for pt in points if pt[:2] == (p, o) and pt[3] == method and pt[4] == seed}
        assert lams == ({None} if method in ("real", "reweighing", "acgan") else {0.5, 2.0}), (p, seed, method)


def test_sweep_is_not_in_all(tmp_path):
    jobs = _jobs(_dry_run(tmp_path, target="all"))
    assert jobs and not [j for j in jobs if j["rule"].startswith("sweep")]


def test_report_refuses_other_format_version(fixture_sweep, tmp_path, monkeypatch, capsys):
    from fairgen.common import io

    root, paths, results = fixture_sweep
    runs = sweep.collect(paths)
    monkeypatch.setitem(io.FORMAT_VERSIONS, "sweep_runs", io.FORMAT_VERSIONS["sweep_runs"] + 1)
    io.write_parquet(runs, tmp_path / "runs.parquet", "sweep_runs")
    monkeypatch.undo()
    assert cli_main(["sweep-report", "--runs", str(tmp_path / "runs.parquet"),
                     "--out-html", str(tmp_path / "report.html")]) == 2
    assert "format version 2 of 'sweep_runs' is not supported" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()
