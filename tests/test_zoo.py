"""The seed-GAN zoo on the shared trainer: run settings -> models, the real-data evaluation
classifier, a small CGAN trained on the real digits through the CLI (its samples must be the
requested digit far more often than chance and its FID must fall with training), the per-class
grid, the self-contained report, and the checks that reject mismatched inputs."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fairgen import cli
from fairgen.common import config
from fairgen.common.errors import ConfigError
from fairgen.common.io import read_json
from fairgen.data import zoo_data as zd
from fairgen.eval import zoo

ROOT = Path(__file__).resolve().parent.parent

# A small CGAN (the seed architecture at 1/4 width, with a high learning rate so that label
# conditioning appears within 300 steps) and a small classifier: seconds on a CPU.
TINY = {
    "seed": 0, "device": "cpu",
    "zoo": {
        "runs": ["cgan"], "log_every": 50, "sample_every": 100, "checkpoint_every": 100,
        "cgan": {"steps": 300, "batch_size": 32, "lr": 0.002, "lr_decay": "none",
                 "model": {"z_dim": 32, "embed_dim": 10, "g_widths": [64, 32, 16], "d_widths": [16, 32]}},
        "eval": {"n_samples": 300, "grid_columns": 6},
    },
}
#: and a small evaluation classifier (an evaluator internal, not config)
TINY_CLASSIFIER = {**zoo.EVAL_CLASSIFIER, "steps": 150, "width": 8}


@pytest.fixture(scope="module", autouse=True)
def _tiny_classifier():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(zoo, "EVAL_CLASSIFIER", TINY_CLASSIFIER)
        yield


@pytest.fixture(autouse=True)
def _one_thread():
    # small convolutions: one thread is fastest, and far faster on a busy shared machine
    torch.set_num_threads(1)


def _cli(*args, cfg=TINY):
    return cli.main([*args, "--config-json", json.dumps(cfg)])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Digits data, the evaluation classifier, a CGAN trained for 300 steps and one trained for a
    single step (the baseline it must beat), both evaluated, plus the report."""
    torch.set_num_threads(1)
    w = tmp_path_factory.mktemp("zoo")
    zd.write(zd.load_digits(), w / "data" / "digits")
    assert _cli("zoo-classifier", "--data", str(w / "data/digits"), "--out-dir", str(w / "classifier/digits")) == 0
    early = json.loads(json.dumps(TINY))
    early["zoo"]["cgan"]["steps"] = 1
    train = w / "cgan" / "train"
    assert _cli("zoo-train", "--model", "cgan", "--data", str(w / "data/digits"), "--out-dir", str(w / "early"),
                cfg=early) == 0
    assert _cli("zoo-train", "--model", "cgan", "--data", str(w / "data/digits"), "--out-dir", str(train)) == 0
    for name, ckpt in (("cgan/eval", train / "checkpoint.pt"), ("early_eval", w / "early" / "checkpoint.pt")):
        assert _cli("zoo-evaluate", "--model", "cgan", "--checkpoint", str(ckpt), "--data", str(w / "data/digits"),
                    "--classifier", str(w / "classifier/digits/model.pt"), "--out-dir", str(w / name)) == 0
    assert _cli("zoo-report", "--zoo-dir", str(w), "--out-html", str(w / "report.html"),
                "--out-json", str(w / "summary.json")) == 0
    return w


# ----------------------------------------------------------------------------- settings -> models


def test_every_run_builds_its_seed_model_at_its_data_shape():
    cfg = config.validate({})
    expected = {"vanilla": ((28, 1), "vanilla"), "dcgan": ((28, 1), "dcgan"), "cgan": ((28, 1), "cgan"),
                "acgan": ((32, 3), "acgan"), "acgan_digits": ((32, 3), "acgan")}
    for run, ((size, ch), name) in expected.items():
        assert zoo.run_shape(cfg, run) == (size, ch)
        gan = zoo.build_model(cfg, run, size, ch, 10)
        assert gan.name == name and zoo.is_conditional(gan) == (run in ("cgan", "acgan", "acgan_digits"))
        latent = gan.sample_latent(2, torch.Generator().manual_seed(0), "cpu")
        assert gan.generate(latent)["x"].shape == (2, ch, size, size)
    # the original internship report's hyperparameters reach the models
    assert zoo.build_model(cfg, "acgan", 32, 3, 10).config["g_linear"] == 384
    assert zoo.build_model(cfg, "vanilla", 28, 1, 10).config["hidden"] == [128]


def test_run_settings_map_onto_the_trainer():
    cfg = config.validate({"zoo": {"acgan_digits": {"model": {"channels": 1}}}})
    assert zoo.run_shape(cfg, "acgan_digits") == (32, 1)
    tc = zoo.train_config(cfg, "acgan")
    assert (tc.batch_size, tc.lr_g, tc.lr_d, tc.betas) == (100, 0.0002, 0.0002, (0.5, 0.999))
    tc = zoo.train_config(cfg, "vanilla")
    assert (tc.batch_size, tc.lr_g, tc.lr_decay) == (128, 0.0002, "linear")
    tc = zoo.train_config(cfg, "cgan")
    assert tc.batch_size == 32 and tc.extra == {"zoo_run": "cgan"}
    assert (tc.lr_g, tc.betas) == (None, None)  # null: the model's own Adam defaults
    assert zoo.build_model(cfg, "cgan", 28, 1, 10).default_optim == {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)}
    assert tc.seed != zoo.train_config(cfg, "dcgan").seed  # per-run seeds


def test_bad_model_arguments_name_the_config_key():
    cfg = config.validate({"zoo": {"dcgan": {"model": {"g_width": 3}}}})
    with pytest.raises(ConfigError, match="zoo.dcgan.model"):
        zoo.build_model(cfg, "dcgan", 28, 1, 10)
    cfg = config.validate({"zoo": {"acgan": {"model": {"channels": 2}}}})
    with pytest.raises(ConfigError, match="zoo.acgan.model.channels"):
        zoo.run_shape(cfg, "acgan")
    with pytest.raises(ConfigError, match="unknown zoo run"):
        zoo.check_run("wgan")


# ----------------------------------------------------------------------------- pieces


def test_stratified_holdout_is_disjoint_complete_and_per_class():
    labels = np.repeat(np.arange(4), [10, 20, 1, 5])
    train, hold = zoo.stratified_holdout(labels, 0.2, seed=1)
    assert np.intersect1d(train, hold).size == 0 and np.union1d(train, hold).tolist() == list(range(36))
    assert np.bincount(labels[hold], minlength=4).tolist() == [2, 4, 0, 1]
    assert np.array_equal(zoo.stratified_holdout(labels, 0.2, seed=1)[1], hold)


def test_class_accuracy_and_coverage_by_hand():
    acc = zoo.class_accuracy(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 4)
    assert acc["accuracy"] == 0.75 and acc["accuracy_by_class"] == [1.0, 1.0, 0.5, None] and acc["n"] == 4
    cov = zoo.coverage(np.array([0] * 9 + [1]), 4)
    assert cov["predicted_counts"] == [9, 1, 0, 0] and cov["classes_covered"] == 1  # 1/10 < 0.5 * 1/4
    assert cov["effective_classes"] == pytest.approx(np.exp(-(0.9 * np.log(0.9) + 0.1 * np.log(0.1))))
    assert zoo.coverage(np.array([0] * 8 + [1] * 2), 4)["classes_covered"] == 2  # 2/10 >= 1/8
    assert zoo.coverage(np.arange(10) % 5, 5)["effective_classes"] == pytest.approx(5.0)


def test_class_grid_has_a_row_per_class(tmp_path):
    rows = [np.full((n, 8, 8, 1), 40 * k, np.uint8) for k, n in enumerate([3, 0, 2])]
    zoo.class_grid(rows, ["a", "b", "c"], 3, tmp_path / "g.png", scale=2)
    img = np.asarray(Image.open(tmp_path / "g.png"))
    assert img.shape[0] == 3 * (16 + 2) + 2  # three rows of 16 px cells with 2 px gaps
    cells = img[2:-2, -(3 * 18 + 2):]  # the three image columns right of the labels (each cell + gap)
    assert (cells[18:34] == 255).all()  # row "b" has no images: blank
    assert (cells[36:52, 2:18] == 80).all() and (cells[36:52, 18:20] == 255).all()  # row "c": image, gap


# ----------------------------------------------------------------------------- trained CGAN


def test_classifier_is_accurate_on_real_held_out_digits(work):
    m = read_json(work / "classifier/digits/metrics.json")
    assert m["n_holdout"] == 359 and m["n_train"] == 1438
    assert m["holdout_accuracy"] > 0.85
    assert all(a > 0.5 for a in m["holdout_accuracy_by_class"])
    r = zoo.load_classifier(work / "classifier/digits/model.pt")
    images = zd.load_digits(32, 3).images[:5]  # other shapes are converted to 28x28x1
    out = r.run(images)
    assert out["features"].shape == (5, 32) and np.allclose(out["probs"].sum(1), 1)
    assert r.feature_dim == 32 and np.array_equal(r.features(images), out["features"])  # FID extractor API


def test_classifier_is_reused_when_up_to_date(work):
    path = work / "classifier/digits/model.pt"
    before = path.stat().st_mtime_ns
    assert _cli("zoo-classifier", "--data", str(work / "data/digits"), "--out-dir", str(path.parent)) == 0
    assert path.stat().st_mtime_ns == before


def test_trained_cgan_draws_the_requested_digit_far_above_chance(work):
    m = read_json(work / "cgan/eval/metrics.json")
    early = read_json(work / "early_eval/metrics.json")
    assert m["run"] == "cgan" and m["step"] == 300 and m["conditional"] and m["chance"] == 0.1
    ca = m["conditional_accuracy"]
    assert ca["n"] == 300 and ca["accuracy"] > 0.25  # chance 0.1
    assert ca["accuracy"] > early["conditional_accuracy"]["accuracy"] + 0.15
    assert np.array(ca["confusion"]).sum() == 300 and np.trace(ca["confusion"]) == round(ca["accuracy"] * 300)
    # FID in the classifier's feature space: training moves towards the real data, not to the floor
    fid = m["fid"]
    assert fid["n_real"] == fid["n_generated"] == 300 and fid["label"] == zoo.FID_LABEL
    assert 0 <= fid["real_floor"] < fid["value"] < early["fid"]["value"]
    assert early["fid"]["real_floor"] == fid["real_floor"]  # same seeded real subsets
    assert 1 <= m["coverage"]["classes_covered"] <= 10 and sum(m["coverage"]["predicted_counts"]) == 300
    assert m["real_accuracy_on_reference"] > 0.85


def test_training_outputs_and_per_class_grid(work):
    train = work / "cgan/train"
    for name in ("checkpoint.pt", "log.jsonl", "train.json", "loss_curve.png"):
        assert (train / name).is_file()
    summary = read_json(train / "train.json")
    assert summary["run"] == "cgan" and summary["steps"] == 300 and summary["dataset"] == "digits"
    assert summary["train"]["batch_size"] == 32 and summary["image_shape"] == [28, 28, 1]
    records = [json.loads(line) for line in (train / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [50, 100, 150, 200, 250, 300]
    assert sorted(p.name for p in (train / "samples").iterdir()) == [f"step_{s:07d}.png" for s in (100, 200, 300)]
    img = np.asarray(Image.open(work / "cgan/eval/grid.png"))
    m = read_json(work / "cgan/eval/metrics.json")
    assert m["grid"]["rows"] == 10 and m["grid"]["columns"] == 6
    assert img.shape[0] == 10 * (56 + 2) + 2  # ten class rows of 2x-scaled 28 px images


def test_report_is_self_contained_and_states_the_numbers(work):
    page = (work / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:|//)", page) and "<script" not in page
    summary = read_json(work / "summary.json")
    acc = summary["runs"]["cgan"]["conditional_accuracy"]["accuracy"]
    assert f"{100 * acc:.1f}%" in page and summary["findings"] and "cgan on digits" in summary["findings"][0]
    assert summary["classifiers"]["digits"]["holdout_accuracy"] > 0.85


def test_evaluate_rejects_mismatched_inputs(work, tmp_path, capsys):
    args = ["--data", str(work / "data/digits"), "--classifier", str(work / "classifier/digits/model.pt"),
            "--out-dir", str(tmp_path / "e")]
    ckpt = str(work / "cgan/train/checkpoint.pt")
    assert _cli("zoo-evaluate", "--model", "dcgan", "--checkpoint", ckpt, *args) == 2
    assert "not of zoo run 'dcgan'" in capsys.readouterr().err
    other = tmp_path / "d3"
    zd.write(zd.make_cifar_standin(20, seed=0, progress=False), other)
    bad = ["--data", str(other), *args[2:]]
    assert _cli("zoo-evaluate", "--model", "cgan", "--checkpoint", ckpt, *bad) == 2
    assert "config asks for 'digits'" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_snakemake_zoo_target_plans_every_stage():
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(ROOT),
                        "--configfile", str(ROOT / "config" / "tiny.yaml"), "-n", "--forceall", "zoo"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    counts = dict(re.findall(r"^(zoo\w*)\s+(\d+)$", out, flags=re.M))
    runs = config.load(ROOT / "config" / "tiny.yaml")["zoo"]["runs"]
    datasets = {config.load(ROOT / "config" / "tiny.yaml")["zoo"][r]["dataset"] for r in runs}
    assert counts["zoo_train"] == counts["zoo_evaluate"] == str(len(runs))
    assert counts["zoo_data"] == counts["zoo_classifier"] == str(len(datasets))
    assert counts["zoo_report"] == "1"


@pytest.mark.e2e
@pytest.mark.timeout(1500)  # every zoo stage through Snakemake, the evaluator at its full size: minutes
def test_snakemake_runs_the_zoo_on_the_tiny_config(tmp_path):
    """Every zoo rule on both data families (cgan on digits, acgan on the CIFAR stand-in)."""
    extra = tmp_path / "runs.yaml"
    extra.write_text("zoo:\n  runs: [cgan, acgan]\n")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(ROOT / "config" / "tiny.yaml"), str(extra), "--cores", "2", "zoo"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    summary = read_json(tmp_path / "results/zoo/summary.json")
    assert sorted(summary["runs"]) == ["acgan", "cgan"] and sorted(summary["classifiers"]) == ["cifar_standin", "digits"]
    assert summary["runs"]["acgan"]["standin"] and summary["runs"]["acgan"]["class_names"] == zd.STANDIN_CLASSES
    page = (tmp_path / "results/zoo/report.html").read_text()
    assert "STAND-IN for CIFAR-10" in page and page.count("<img class='grid'") == 2
    for name in ("data_digits", "classifier_cifar_standin", "train_acgan", "evaluate_cgan", "report"):
        assert (tmp_path / f"results/logs/zoo/{name}.log").is_file()
    again = subprocess.run(cmd + ["-n"], capture_output=True, text=True)
    assert "Nothing to be done" in again.stdout + again.stderr
    shutil.rmtree(tmp_path / "results", ignore_errors=True)
