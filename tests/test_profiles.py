"""The execution profiles (workflow/profiles/): every setting is understood by the installed
Snakemake (and SLURM plugin), and the dry-run DAG gets the threads and resources they promise.
The SLURM profile's real run is tests/test_slurm.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _dry_run(tmp_path: Path, profile: str, *targets: str) -> dict[str, dict]:
    """rule -> {'threads', 'resources'} of each job in `snakemake -n` with the profile (tiny config)."""
    cmd = [sys.executable, "-m", "snakemake", *targets, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--profile", str(ROOT / "workflow" / "profiles" / profile), "--configfile",
           str(ROOT / "config" / "tiny.yaml"), "-n"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    jobs = {}
    for block in re.split(r"\n\s*\n", out):
        m = re.search(r"^(?:local)?rule (\w+):$", block, re.M)
        if m:
            threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
            res = re.search(r"^\s+resources: (.*)$", block, re.M)
            jobs[m[1]] = {"threads": int(threads[1]) if threads else 1,
                          "resources": dict(kv.split("=", 1) for kv in res[1].split(", ")) if res else {}}
    return jobs | {"_log": out}


def test_default_profile(tmp_path):
    jobs = _dry_run(tmp_path, "default", "results/quality/quality.json", "results/classifiers/metrics_table.parquet")
    from snakemake.utils import available_cpu_count

    cores = available_cpu_count()  # what `cores: all` means to Snakemake
    assert jobs["dataset"]["threads"] == cores  # the data rules use every core
    for rule in ("train_gan", "generate", "train_classifier", "quality"):  # config key threads (1)
        assert jobs[rule]["threads"] == 1, rule
    for rule in ("train_gan", "generate", "train_classifier", "quality"):
        assert jobs[rule]["resources"]["gpu"] == "1", rule


def test_slurm_profile_settings(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[test]' installs the plugin")
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    # a dry run rejects settings the installed Snakemake / plugin do not know
    jobs = _dry_run(tmp_path, "slurm", "all", "sweep")
    cap = profile["max-threads"]
    assert jobs["dataset"]["threads"] == cap  # rules using "all cores" get max-threads
    assert jobs["train_gan"]["threads"] == 1  # torch jobs: config key threads, not the core count
    default = profile["default-resources"]
    for rule, job in jobs.items():
        if rule.startswith("_") or rule in ("all", "sweep"):
            continue
        res = job["resources"]
        want = {**default, **profile["set-resources"].get(rule, {})}
        assert res["slurm_partition"] == want["slurm_partition"], rule
        assert int(res["mem_mb"]) == want["mem_mb"] and int(res["runtime"]) == want["runtime"], (rule, res)
        assert "cpus_per_task" not in res, rule  # --cpus-per-task follows the job's threads
    # the sweep's copies of the heavy rules get the same limits as the originals
    for rule in ("train_gan", "train_classifier"):
        assert profile["set-resources"][f"sweep_{rule}"] == profile["set-resources"][rule]
        assert jobs[f"sweep_{rule}"]["resources"]["gpu"] == "1"
