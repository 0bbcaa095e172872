"""Training interrupted for real: ``kill -9`` of ``fairgen train-gan`` and of a whole ``snakemake``
run after the first checkpoint, then the same command again. The rerun must resume from the
state folder (``OUT.state``, not among the rule's outputs, which Snakemake deletes before a rerun)
and end with exactly the weights of an uninterrupted run (CPU, same seed, one thread). Also:
a NaN batch stops ``fairgen train-gan`` with a clear error, keeps the last good checkpoint and
publishes no output, and the same command then resumes from that checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fairgen import cli, config, io
from fairgen.training import load_checkpoint
from fairgen.training.logs import read_jsonl
from test_fairness_gan import _write_crops  # the tiny biased crops array + index builder

ROOT = Path(__file__).resolve().parent.parent
RUN = "fgan_dp"
STEPS = 60
# every key of the gan section explicit (schema defaults filled), so the Snakemake run below,
# whose config also merges config/config.yaml, trains exactly what the direct CLI run trains
CFG = config.validate({
    "seed": 3, "device": "cpu", "precision": "fp32", "protected": "Male", "outcome": "Attractive",
    "gan": {"runs": [RUN], "steps": STEPS, "batch_size": 8, "width": 4, "z_dim": 8, "lr_decay": "linear",
            "log_every": 10, "sample_every": 30, "checkpoint_every": 10},
})
TRAIN_CFG = {k: CFG[k] for k in ("seed", "device", "precision", "protected", "outcome", "gan")}
# one thread everywhere: the compared runs must do their float reductions in the same order
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train_cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "fairgen", "train-gan", "--config-json", json.dumps(TRAIN_CFG), "--run", RUN,
            "--array", str(data / "crops.npy"), "--index", str(data / "index.parquet"), "--out-dir", str(out)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("crops")
    _write_crops(folder)
    return folder


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / RUN
    r = subprocess.run(train_cmd(data, out), capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not Path(f"{out}.state").exists()  # the state is removed once every output is written
    return out


def assert_same_weights(a: Path, b: Path) -> None:
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    assert ca["step"] == cb["step"] == STEPS
    for part in ("G", "D"):
        assert ca[part].keys() == cb[part].keys()
        for k in ca[part]:
            assert torch.equal(ca[part][k], cb[part][k]), f"{part}.{k} differs from the uninterrupted run"


def assert_same_log(a: Path, b: Path) -> None:
    """Each step logged once, with the uninterrupted run's values (times aside)."""
    def strip(path):
        return [{k: v for k, v in r.items() if k not in ("time_s", "images_per_s")} for r in read_jsonl(path)]
    assert strip(a) == strip(b)
    assert [r["step"] for r in read_jsonl(b)] == list(range(10, STEPS + 1, 10))


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_when_checkpointed(proc: subprocess.Popen, state: Path, timeout: float = 300) -> int:
    """SIGKILL ``proc`` and every process below it as soon as ``state/checkpoint.pt`` exists;
    return the step of that (atomically written) checkpoint."""
    deadline = time.monotonic() + timeout
    while not (state / "checkpoint.pt").exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before its first checkpoint")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no checkpoint appeared")
        time.sleep(0.01)
    tree = descendants(proc.pid)
    for pid in [proc.pid, *tree]:  # the parent first, so that it cannot start anything new
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)
    for pid in tree:  # reaped by init once their parent is gone; wait until they are
        while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
            time.sleep(0.01)
    step = load_checkpoint(state / "checkpoint.pt")["step"]
    assert 10 <= step < STEPS, f"the kill came too late (checkpoint at step {step})"
    return step


def _state(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]).lower()
    except (OSError, IndexError):
        return "zombie"


def published(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_kill_9_then_same_command_resumes_to_the_uninterrupted_weights(data, reference, tmp_path):
    out = tmp_path / "gan" / RUN
    state = Path(f"{out}.state")
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(train_cmd(data, out), stdout=log, stderr=subprocess.STDOUT, env=ENV)
        step = kill_when_checkpointed(proc, state)
    assert proc.returncode == -signal.SIGKILL
    assert published(out) == []  # no output before training is done

    r = subprocess.run(train_cmd(data, out), capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming fairness_gan from {state / 'checkpoint.pt'} at step {step}" in r.stderr
    summary = io.read_json(out / "summary.json")
    assert summary["resumed_from"] == step and summary["steps_this_run"] == STEPS - step
    assert_same_weights(reference / "checkpoint.pt", out / "checkpoint.pt")
    assert_same_log(reference / "log.jsonl", out / "log.jsonl")
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_0000030.png", "step_0000060.png"]
    assert not state.exists()


def snakemake(work: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
            "--configfile", str(work / "run.yaml"), "--cores", "1", *args]


@pytest.mark.e2e
def test_snakemake_killed_mid_training_resumes_on_rerun_incomplete(data, reference, tmp_path):
    work = tmp_path / "wf"
    res = work / "results" / "data"
    res.mkdir(parents=True)
    for name in ("crops.npy", "index.parquet"):
        (res / name).write_bytes((data / name).read_bytes())
    # the other outputs of the upstream rules, so that only train_gan is out of date
    (res / "dataset.json").write_text("{}")
    (res / "crops_summary.json").write_text("{}")
    (res / "previews").mkdir()
    for path in [work / "results", *(work / "results").rglob("*")]:
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (work / "run.yaml").write_text(json.dumps(TRAIN_CFG))
    target = f"results/gan/{RUN}/checkpoint.pt"
    run = snakemake(work, "--allowed-rules", "train_gan", "--rerun-incomplete", "--", target)
    out, state = work / "results" / "gan" / RUN, work / "results" / "gan" / f"{RUN}.state"

    with open(tmp_path / "snakemake_killed.log", "w") as log:
        proc = subprocess.Popen(run, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        step = kill_when_checkpointed(proc, state)
    assert published(out) == []  # Snakemake made the folder; no output was written into it

    # what a user does after a kill -9: remove the stale lock, run the same command again
    unlock = subprocess.run(snakemake(work, "--unlock"), capture_output=True, text=True, env=ENV, timeout=300)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    again = subprocess.run(run, capture_output=True, text=True, env=ENV, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-4000:]
    job_log = (work / "results" / "logs" / "train_gan" / f"{RUN}.log").read_text()
    assert f"resuming fairness_gan from results/gan/{RUN}.state/checkpoint.pt at step {step}" in job_log
    assert io.read_json(out / "summary.json")["resumed_from"] == step
    assert_same_weights(reference / "checkpoint.pt", out / "checkpoint.pt")
    assert_same_log(reference / "log.jsonl", out / "log.jsonl")
    assert not state.exists()
    assert not list(out.glob(".*"))  # no temporaries of atomic writes left among the outputs


# ---------------------------------------------------------------------------------------------
# divergence through the CLI


def test_nan_batch_stops_train_gan_keeps_last_good_checkpoint_then_resumes(data, reference, tmp_path, capsys,
                                                                            monkeypatch):
    """From the 15th batch on the images are NaN: the interval ending at step 20 is caught at its
    log, before the step-20 checkpoint; exit 2 with the step range and the kept checkpoint."""
    from fairgen.training import batches

    torch.set_num_threads(1)
    calls = {"n": 0}
    clean_sample = batches.ArrayBatches.sample

    def sample(self, n):
        calls["n"] += 1
        b = clean_sample(self, n)
        if calls["n"] >= 15:
            b["x"] = torch.full_like(b["x"], float("nan"))
        return b

    monkeypatch.setattr(batches.ArrayBatches, "sample", sample)
    out = tmp_path / "gan" / RUN
    state = Path(f"{out}.state")
    args = train_cmd(data, out)[3:]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert (f"fairgen train-gan: error: training of 'fairness_gan' diverged: non-finite loss (loss_d=nan, "
            f"loss_g=nan) between steps 11 and 20; the last good checkpoint {state / 'checkpoint.pt'} "
            f"(step 10) is untouched") in err
    kept = load_checkpoint(state / "checkpoint.pt")
    assert kept["step"] == 10
    assert all(torch.isfinite(v).all() for part in ("G", "D") for v in kept[part].values() if v.is_floating_point())
    assert published(out) == []

    # data fixed: the same command resumes from the kept checkpoint and matches the reference
    monkeypatch.setattr(batches.ArrayBatches, "sample", clean_sample)
    assert cli.main(args) == 0
    assert io.read_json(out / "summary.json")["resumed_from"] == 10
    assert_same_weights(reference / "checkpoint.pt", out / "checkpoint.pt")
    assert not state.exists()


def test_interrupted_while_writing_outputs_republishes_without_training(data, reference, tmp_path, monkeypatch):
    """Stopped after training but before the last output (here: in the class grid), with a
    partial checkpoint among the outputs: the same command trains nothing, replaces the partial
    files from the state and writes the rest."""
    from fairgen.training import fairness_run

    torch.set_num_threads(1)
    out = tmp_path / "gan" / RUN
    state = Path(f"{out}.state")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(fairness_run, "write_class_grid", interrupted)
        assert cli.main(train_cmd(data, out)[3:]) == 130
    assert load_checkpoint(state / "checkpoint.pt")["step"] == STEPS
    assert not (out / "summary.json").exists()
    (out / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes()[:1000])  # as if cut short

    assert cli.main(train_cmd(data, out)[3:]) == 0
    summary = io.read_json(out / "summary.json")
    assert summary["resumed_from"] == STEPS and summary["steps_this_run"] == 0
    assert_same_weights(reference / "checkpoint.pt", out / "checkpoint.pt")
    assert_same_log(reference / "log.jsonl", out / "log.jsonl")
    assert (out / "class_grid.png").is_file() and not state.exists()


def test_state_of_other_settings_or_data_is_discarded_not_resumed(data, reference, tmp_path, caplog):
    """A state left by an interrupted run is only continued by the same run: other settings or
    other train crops discard it (with a warning) and the run starts from step 0."""
    torch.set_num_threads(1)
    out = tmp_path / "gan" / RUN
    state = Path(f"{out}.state")
    state.mkdir(parents=True)
    ck = torch.load(reference / "checkpoint.pt", weights_only=True)
    ck["step"] = 30
    ck["train"]["extra"]["data"] = "0" * 32  # made from other crops
    torch.save(ck, state / "checkpoint.pt")
    (state / "log.jsonl").write_text('{"step": 10, "loss_d": 123.0}\n')
    assert cli.main(train_cmd(data, out)[3:]) == 0
    assert "discarding the training state" in caplog.text and "extra" in caplog.text
    summary = io.read_json(out / "summary.json")
    assert summary["resumed_from"] is None and summary["steps_this_run"] == STEPS
    assert_same_weights(reference / "checkpoint.pt", out / "checkpoint.pt")
    assert_same_log(reference / "log.jsonl", out / "log.jsonl")
    assert not state.exists()
