"""Integration: the workflow through a real single-node SLURM cluster with the cluster profile.

A session fixture starts slurmctld + slurmd + munged (tests/slurm/local_slurm.sh; installs
slurm-wlm and munge with apt-get when missing) in a temporary state folder on free ports, and
stops exactly those daemons afterwards, also when a test fails. The test runs the tiny config
(config/tiny.yaml) with one GAN run and three classifiers (OVERLAY) up to the classifier metrics
table, `results/classifiers/metrics_table.parquet`: dataset -> crops -> train_gan -> generate ->
train_classifier x3 -> metrics_table, 8 jobs, every stage of the chain from data to the table
(quality and the audit, which only read these outputs, are left out to keep it short).

The SLURM run uses `--profile` with a copy of workflow/profiles/slurm whose per-job threads
(max-threads) and memory requests are lowered to what the one local node offers; everything
else is the profile as shipped. At the same time the same target runs locally (plain
`--cores N`, same thread count) as the reference; on CPU every stage is deterministic given the
seed and thread count, so the outputs must be identical.

Needs root (munged runs as user munge, slurmd as root); skipped otherwise, or when slurm-wlm is
missing and cannot be installed -- except under CI=true, where such a skip fails the run with its
reason (tests/conftest.py). Marker ``slurm``: deselect with ``-m "not slurm"``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fairgen.common.io import read_parquet

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "slurm" / "local_slurm.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
TARGET = "results/classifiers/metrics_table.parquet"
OVERLAY = {
    "gan": {"runs": ["fgan_dp"], "steps": 20, "log_every": 10, "sample_every": 10, "checkpoint_every": 10},
    "classifier": {"methods": ["real", "reweighing", "fgan_dp"]},
}
# rule -> wildcards of the jobs the target needs
JOBS = {"dataset": [""], "crops": [""], "train_gan": ["fgan_dp"], "generate": ["fgan_dp"],
        "train_classifier": ["real", "reweighing", "fgan_dp"], "metrics_table": [""]}
GPU_RULES = {"train_gan", "generate", "train_classifier"}  # resources: gpu=1
DAEMONS = ("slurmctld", "slurmd", "munged", "sbatch")
RUN_TIMEOUT_S = 1200
# the first test also starts the cluster (an apt-get install of slurm-wlm on a bare machine) and
# waits for both runs; CI as a whole must stay under 30 minutes
pytestmark = [pytest.mark.slurm, pytest.mark.timeout(1700)]
THREADS = min(2, len(os.sched_getaffinity(0)))  # the node offers nproc CPUs; the profile's max-threads
# each rule's threads: the data rules take all cores (capped by max-threads), the torch rules take
# config key `threads` (config.yaml's value: tiny.yaml and the overlay leave it), the table one
TORCH_THREADS = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["threads"]
RULE_THREADS = {"dataset": THREADS, "crops": THREADS, "metrics_table": 1,
                **{rule: min(THREADS, TORCH_THREADS) for rule in ("train_gan", "generate", "train_classifier")}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _have_slurm() -> bool:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
    return all(shutil.which(d, path=path) for d in DAEMONS)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running single-node cluster: yields the environment client commands need."""
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root (munged runs as user munge, slurmd as root)")
    installed = _have_slurm()
    if not installed and shutil.which("apt-get") is None:
        pytest.skip("slurm-wlm/munge are not installed and apt-get is not available to install them")
    # not under pytest's tmp folders: those are private to root (0700), and munged runs as user munge
    state = Path(tempfile.mkdtemp(prefix="fairgen-slurm-", dir="/tmp"))
    ports = {_free_port()}
    while len(ports) < 2:
        ports.add(_free_port())
    ctld_port, slurmd_port = sorted(ports)
    env = {**os.environ, "FAIRGEN_SLURMCTLD_PORT": str(ctld_port), "FAIRGEN_SLURMD_PORT": str(slurmd_port)}
    try:
        t0 = time.perf_counter()
        r = subprocess.run(["bash", str(SCRIPT), "start", str(state)], env=env, capture_output=True, text=True,
                           timeout=900)
        if r.returncode != 0:
            if not installed and not _have_slurm():
                pytest.skip(f"could not install slurm-wlm/munge with apt-get: {r.stderr.strip()[-500:]}")
            pytest.fail(f"local_slurm.sh start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        exports = subprocess.run(["bash", "-c", f'eval "$(bash {SCRIPT} env {state})"; env -0'], env=env,
                                 capture_output=True, text=True, check=True, timeout=120).stdout
        client = dict(item.split("=", 1) for item in exports.split("\0") if "=" in item)
        print(f"\nlocal SLURM up in {time.perf_counter() - t0:.1f} s ({state})")
        yield {"state": state, "env": client}
    finally:
        # jobs of a failed run first (they belong to this cluster only), then the daemons
        conf_env = {**env, "SLURM_CONF": str(state / "slurm.conf")}
        if (state / "started.pids").exists():
            subprocess.run(["scancel", "--partition", "fairgen"], env=conf_env, capture_output=True, timeout=60)
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def _node_memory_mb(conf: Path) -> int:
    m = re.search(r"RealMemory=(\d+)", conf.read_text())
    assert m, f"{conf}: no RealMemory"
    return int(m[1])


def _node_profile(folder: Path, node_mem_mb: int) -> Path:
    """workflow/profiles/slurm with threads and memory requests that fit the one local node."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile["max-threads"] = min(profile["max-threads"], THREADS)
    for res in [profile["default-resources"], *profile.get("set-resources", {}).values()]:
        if "mem_mb" in res:
            res["mem_mb"] = min(res["mem_mb"], node_mem_mb)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def _snakemake_cmd(workdir: Path, overlay: Path, *args) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(ROOT / "config" / "tiny.yaml"), str(overlay), *args, TARGET]


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The target through SLURM and, concurrently, locally; returns both workdirs and the SLURM log."""
    base = tmp_path_factory.mktemp("slurm_e2e")
    overlay = base / "overlay.yaml"
    overlay.write_text(yaml.safe_dump(OVERLAY))
    env = {**slurm_cluster["env"], "PYTHONUNBUFFERED": "1"}
    profile = _node_profile(base / "profile", _node_memory_mb(Path(env["SLURM_CONF"])))
    local_dir, slurm_dir = base / "local", base / "slurm"
    t0 = time.perf_counter()
    with open(base / "local.log", "w") as local_log:
        local = subprocess.Popen(_snakemake_cmd(local_dir, overlay, "--cores", str(THREADS)), stdout=local_log,
                                 stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            # --verbose: the plugin logs each sbatch call; the jobs log their environment
            slurm = subprocess.run(_snakemake_cmd(slurm_dir, overlay, "--profile", str(profile), "--verbose"),
                                   capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S)
            t_slurm = time.perf_counter() - t0
            local.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if local.poll() is None:
                local.terminate()
                local.wait(30)
    log = slurm.stdout + slurm.stderr
    (base / "slurm.log").write_text(log)
    t_local = re.findall(r"Elapsed time: (\S+)", (base / "local.log").read_text())
    print(f"SLURM run {t_slurm:.0f} s, concurrent local run {t_local[-1] if t_local else '?'}; logs in {base}")
    assert slurm.returncode == 0, f"snakemake via SLURM failed:\n{log[-8000:]}"
    assert local.returncode == 0, f"local snakemake failed:\n{(base / 'local.log').read_text()[-6000:]}"
    return {"local": local_dir, "slurm": slurm_dir, "log": log}


def _submissions(log: str, workdir: Path) -> dict[str, tuple[str, str, Path]]:
    """The plugin's submission lines: SLURM job id -> (rule, wildcards, SLURM log file)."""
    logdir = workdir / "results" / "logs" / "slurm"  # the profile's slurm-logdir
    out = {}
    for m in re.finditer(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.", log):
        rel = Path(m[2]).relative_to(logdir)
        out[m[1]] = (rel.parts[0].removeprefix("rule_"), "/".join(rel.parts[1:-1]), Path(m[2]))
    return out


def _job_env(slurm_log: Path) -> dict[str, str]:
    """SLURM_*/CUDA variables from the environment the job step logged (jobstep plugin, --verbose)."""
    text = slurm_log.read_text()
    return dict(re.findall(r"'((?:SLURM|CUDA)_[A-Z_]+)': '([^']*)'", text))


def test_every_job_ran_as_a_slurm_job(runs):
    subs = _submissions(runs["log"], runs["slurm"])
    got = sorted((rule, wc) for rule, wc, _ in subs.values())
    assert got == sorted((rule, wc) for rule, wcs in JOBS.items() for wc in wcs), got
    for jobid, (rule, wc, path) in subs.items():
        # one log per job, named by its SLURM job id, kept after success (slurm-keep-successful-logs)
        assert path.name == f"{jobid}.log" and path.is_file(), path
        env = _job_env(path)
        assert env.get("SLURM_JOB_ID") == jobid, (path, env)  # the job step ran inside that allocation
        assert env.get("SLURM_JOB_PARTITION") == "fairgen", (path, env)
    assert "8 of 8 steps (100%) done" in runs["log"]


def test_gpu_rules_get_one_gpu(runs):
    subs = _submissions(runs["log"], runs["slurm"])
    calls = re.findall(r"sbatch call: (sbatch .*?) --wrap=", runs["log"])
    assert len(calls) == len(subs)
    by_rule = {}
    for call in calls:
        comment = re.search(r"--comment (\S+)", call)[1].strip("'")  # rule_RULE[_wildcards_WILDCARDS]
        by_rule.setdefault(comment.removeprefix("rule_").split("_wildcards_")[0], []).append(call)
    assert set(by_rule) == set(JOBS)
    for rule, rule_calls in by_rule.items():
        for call in rule_calls:
            assert ("--gpus=1" in call.split()) == (rule in GPU_RULES), call
            assert f"--cpus-per-task={RULE_THREADS[rule]}" in call.split(), call
    # and SLURM allocated it: the job's own environment (fake GRES on /dev/null)
    for jobid, (rule, wc, path) in subs.items():
        env = _job_env(path)
        if rule in GPU_RULES:
            assert env.get("SLURM_GPUS_ON_NODE") == "1" and env.get("SLURM_JOB_GPUS") == "0", (rule, env)
        else:
            assert "SLURM_JOB_GPUS" not in env, (rule, env)


def test_outputs_match_a_local_run(runs):
    a, b = runs["local"] / "results", runs["slurm"] / "results"
    # real data: the packed crops byte for byte, the index row for row
    assert (a / "data/crops.npy").read_bytes() == (b / "data/crops.npy").read_bytes()
    pd.testing.assert_frame_equal(read_parquet(a / "data/index.parquet", "crops_index")[0],
                                  read_parquet(b / "data/index.parquet", "crops_index")[0])
    # GAN training: every logged number but the timings
    def curve(path):
        return [{k: v for k, v in json.loads(line).items() if k not in ("time_s", "images_per_s")}
                for line in path.read_text().splitlines()]

    log_a, log_b = curve(a / "gan/fgan_dp/log.jsonl"), curve(b / "gan/fgan_dp/log.jsonl")
    assert log_a == log_b and log_a[-1]["step"] == OVERLAY["gan"]["steps"]
    # the synthetic set sampled from it, image for image
    sa, sb = (np.load(p / "synthetic/fgan_dp/images.npy") for p in (a, b))
    assert sa.shape[0] == yaml.safe_load((ROOT / "config/tiny.yaml").read_text())["generate"]["n_samples"]
    np.testing.assert_array_equal(sa, sb)
    # every classifier's metrics with their bootstrap intervals, and the table
    for method in OVERLAY["classifier"]["methods"]:
        ma, mb = (json.loads((p / f"classifiers/{method}/metrics.json").read_text()) for p in (a, b))
        for m in (ma, mb):
            m["training"].pop("seconds")
        assert ma == mb, method
    ta, tb = (read_parquet(p / "classifiers/metrics_table.parquet", "metrics_table")[0] for p in (a, b))
    assert list(ta["method"]) == OVERLAY["classifier"]["methods"]
    pd.testing.assert_frame_equal(ta, tb, check_exact=True)
