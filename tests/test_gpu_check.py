"""benchmarks/gpu_check.py: its CPU dry run end to end, and its message on a machine without a GPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fairgen.common.runtime import bf16_native

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def run(*args, timeout=1500):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the real check applies")
def test_without_a_gpu_it_says_so_and_exits_3(tmp_path):
    r = run("--workdir", str(tmp_path / "w"), timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and "no CUDA GPU is visible to PyTorch" in r.stderr and "--device cpu" in r.stderr
    assert not (tmp_path / "w").exists()


@pytest.mark.e2e
@pytest.mark.timeout(1500)  # two (or one) tiny workflows end to end: minutes, above the 300 s default
def test_cpu_dry_run_checks_every_stage_and_prints_the_numbers(tmp_path):
    out = tmp_path / "gpu_check.json"
    # config/tiny.yaml, made smaller still (one GAN run, two classifiers) so that both precisions
    # finish in minutes on a CPU; every kind of torch stage is still there
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text("dataset: {synthetic: {n_images: 300}}\ngan: {runs: [fgan_dp], steps: 20}\n"
                       "generate: {n_samples: 100}\nclassifier: {methods: [real, fgan_dp]}\n"
                       "quality: {n_samples: 60, attribute_coverage: false}\n")
    r = run("--device", "cpu", "--workdir", str(tmp_path / "w"), "--out", str(out), "--warmup", "1",
            "--profile-steps", "3", "--configfile", str(ROOT / "config" / "tiny.yaml"), str(smaller))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] and set(report["precisions"]) == {"fp32", "bf16"}
    for precision, e in report["precisions"].items():
        stages = {s["stage"] for s in e["stages"]}
        assert stages == {"train-gan fgan_dp", "generate fgan_dp", "train-classifier real", "train-classifier fgan_dp",
                          "quality"}
        # bf16 runs where this CPU has it natively (AVX512-BF16 / AMX); elsewhere the runtime falls
        # back to fp32 and records it, and the check expects that
        effective = precision if precision == "fp32" or bf16_native("cpu") else "fp32"
        assert e["effective_precision"] == effective
        assert all(s["device"] == "cpu" and s["precision"] == ("fp32" if s["stage"] == "quality" else effective)
                   for s in e["stages"])
        assert not e["wrong_device"]
        assert all(v > 0 for v in e["gan_images_per_s"].values())
        assert all(v > 0 for v in e["classifier_images_per_s"].values())
        p = e["profile"]
        assert p["device"] == "cpu" and p["images_per_s"] > 0 and p["cuda_kernel_share"] is None
        assert f"== {precision} ==" in r.stdout
    assert "GAN fgan_dp" in r.stdout and "CUDA kernel share -%" in r.stdout
    assert "every torch stage ran on cpu" in r.stdout
