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

import numpy as np
import pytest
import torch
from test_fairness_gan import _write_crops  # the tiny biased crops array + index builder

from fairgen import cli
from fairgen.common import config, io
from fairgen.training import load_checkpoint
from fairgen.training.logs import read_jsonl

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
    kill_tree(proc)
    step = load_checkpoint(state / "checkpoint.pt")["step"]
    assert 10 <= step < STEPS, f"the kill came too late (checkpoint at step {step})"
    return step


def kill_tree(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGKILL ``proc`` and every process below it; return once none of them runs any more."""
    tree = descendants(proc.pid)
    for pid in [proc.pid, *tree]:  # the parent first, so that it cannot start anything new
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    for pid in tree:  # reaped by init once their parent is gone; wait until they are
        while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"process {pid} still runs {timeout} s after SIGKILL")
            time.sleep(0.01)


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


def train_gan_workflow(work: Path, data: Path) -> tuple[list[str], Path, Path]:
    """A workflow folder in which only train_gan is out of date: (the snakemake command that
    trains the run, its output folder, its state folder)."""
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
    return run, work / "results" / "gan" / RUN, work / "results" / "gan" / f"{RUN}.state"


def unlock_and_rerun(work: Path, run: list[str]) -> None:
    """What a user does after a kill -9: remove the stale lock, run the same command again."""
    unlock = subprocess.run(snakemake(work, "--unlock"), capture_output=True, text=True, env=ENV, timeout=300)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    again = subprocess.run(run, capture_output=True, text=True, env=ENV, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-4000:]


@pytest.mark.e2e
def test_snakemake_killed_mid_training_resumes_on_rerun_incomplete(data, reference, tmp_path):
    work = tmp_path / "wf"
    run, out, state = train_gan_workflow(work, data)

    with open(tmp_path / "snakemake_killed.log", "w") as log:
        proc = subprocess.Popen(run, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        step = kill_when_checkpointed(proc, state)
    assert published(out) == []  # Snakemake made the folder; no output was written into it

    unlock_and_rerun(work, run)
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
    from fairgen.stages import train_gan as fairness_run

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


# ---------------------------------------------------------------------------------------------
# kills at any instant: during checkpoint writes, during the publish of the outputs, at random
# times. FAIRGEN_TEST_WRITE_DELAY_S (fairgen.common.io.WRITE_DELAY_ENV) makes every atomic write pause
# after creating its temporary and again before its rename, so the kills land inside writes.

WRITE_DELAY_S = 0.15
KILL_RNG_SEED = 28


class ForkedTrainGan:
    """``fairgen train-gan ARGS`` (``cli.main``) in a child forked from this process: a real
    process to SIGKILL at any instant, without paying the imports of a fresh interpreter for
    each of the many runs. The child uses one torch thread, like the reference run's
    OMP_NUM_THREADS=1, and writes its stdout/stderr to ``log``. Popen-like: pid, poll, wait."""

    def __init__(self, args: list[str], log: Path, write_delay_s: float | None = None):
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into pytest
            rc = 70
            try:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.environ.pop(io.WRITE_DELAY_ENV, None)
                if write_delay_s:
                    os.environ[io.WRITE_DELAY_ENV] = str(write_delay_s)
                torch.set_num_threads(1)
                rc = cli.main(args)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"train-gan (pid {self.pid})", timeout)
            time.sleep(0.005)
        return self.returncode


def run_to_end(args: list[str], log: Path, write_delay_s: float | None = None, timeout: float = 600) -> str:
    proc = ForkedTrainGan(args, log, write_delay_s)
    try:
        rc = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    text = log.read_text()
    assert rc == 0, text[-3000:]
    return text


def wait_for_temporary(proc, folder: Path, prefix: str, nth: int, timeout: float = 300) -> None:
    """Return as soon as the ``nth`` atomic-write temporary ``{prefix}*.tmp`` (a new one each
    time) has appeared in ``folder``; AssertionError if ``proc`` ends first."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        if folder.is_dir():
            seen.update(p.name for p in folder.glob(f"{prefix}*.tmp"))
            if len(seen) >= nth:
                return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) after {len(seen)} of {nth} writes "
                                 f"of {prefix}* in {folder}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {nth} writes of {prefix}* in {folder} within {timeout} s")
        time.sleep(0.002)


def kill_at(proc, point: tuple, out: Path, state: Path, rng) -> None:
    """Kill ``proc`` (and everything below it) at kill point ``point``:
    ("checkpoint", n): inside the n-th checkpoint write into the state;
    ("publish", n): inside the n-th write into the output folder (the run's outputs);
    ("time", t): t seconds after the start."""
    kind, arg = point
    if kind == "time":
        try:
            proc.wait(timeout=arg)
        except subprocess.TimeoutExpired:
            pass
    else:
        folder, prefix = (state, ".checkpoint.pt.") if kind == "checkpoint" else (out, ".")
        wait_for_temporary(proc, folder, prefix, arg)
        time.sleep(rng.uniform(0, 2.5 * WRITE_DELAY_S))  # before, during or just after the content
    kill_tree(proc)


def outputs(out: Path) -> list[str]:
    """The files and folders in ``out`` other than atomic-write temporaries (.NAME.*.tmp)."""
    return [name for name in published(out) if not name.startswith(".")]


def png_ok(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:
        return False


def assert_nothing_half_written(out: Path, state: Path, reference: Path) -> dict:
    """Every output present is complete and final (the published checkpoint and log are those of
    the uninterrupted run; images decode; the sample grids folder holds every grid); a state
    checkpoint, if any, loads. Returns what was found."""
    found = {"outputs": outputs(out), "state_step": None}
    for name in found["outputs"]:
        path = out / name
        if name == "checkpoint.pt":
            assert_same_weights(reference / name, path)
        elif name == "log.jsonl":
            assert_same_log(reference / name, path)
        elif name == "summary.json":
            assert io.read_json(path)["steps"] == STEPS
        elif name == "samples":
            assert published(path) == published(reference / name)
            assert all(png_ok(p) for p in path.iterdir()), path
        else:
            assert name.endswith(".png") and png_ok(path), path
    if (state / "checkpoint.pt").exists():
        found["state_step"] = load_checkpoint(state / "checkpoint.pt")["step"]
    return found


def expected_resume(found: dict) -> int | None:
    """The step the next run must resume from, given what a kill left behind."""
    if found["state_step"] is not None:
        return found["state_step"]
    return STEPS if "checkpoint.pt" in found["outputs"] else None


def assert_resumed_bitwise(point: tuple, found: dict, out: Path, state: Path, reference: Path) -> tuple:
    """After the rerun that followed a kill at ``point`` (which left ``found``): it resumed where
    it had to, ended with the uninterrupted run's weights and log, and left no state or
    temporaries. Returns the report row of the kill point."""
    resumed = io.read_json(out / "summary.json")["resumed_from"]
    assert resumed == expected_resume(found), (point, found, resumed)
    assert_same_weights(reference / "checkpoint.pt", out / "checkpoint.pt")
    assert_same_log(reference / "log.jsonl", out / "log.jsonl")
    assert not state.exists() and outputs(out) == published(out), (point, published(out))
    return point, found["state_step"], len(found["outputs"]), resumed


def print_kill_points(what: str, report: list[tuple]) -> None:
    print(f"\n{what}: {len(report)} kill points, each resumed bitwise "
          "((kind, n-th write or seconds), state step left, outputs present, resumed from):")
    for row in report:
        print("  ", row)


def kill_points(rng, n_each: int, run_s: float) -> list[tuple]:
    """n_each kill points of each kind: inside a random one of the 6 checkpoint writes, inside a
    random one of the 6 writes of the outputs, and at a random time of a run of ``run_s`` s."""
    points = [("checkpoint", int(rng.integers(1, STEPS // 10 + 1))) for _ in range(n_each)]
    points += [("publish", int(rng.integers(1, 7))) for _ in range(n_each)]
    points += [("time", float(rng.uniform(0.0, run_s))) for _ in range(n_each)]
    return points


@pytest.mark.timeout(900)
def test_kill_9_at_any_instant_then_rerun_resumes_bitwise(data, reference, tmp_path):
    """12 kill points (4 inside checkpoint writes, 4 inside the publish of the outputs, 4 at
    random times of a run), each on its own run of train-gan: after each kill no output is
    half-written, and the same command then resumes from what was left and ends with the
    uninterrupted run's weights (bitwise) and log, leaving no state or temporaries behind."""
    args = train_cmd(data, tmp_path / "delayed" / RUN)[3:]
    run_to_end(args, tmp_path / "delayed.log", WRITE_DELAY_S)  # the delay changes no weight
    assert_same_weights(reference / "checkpoint.pt", tmp_path / "delayed" / RUN / "checkpoint.pt")
    # the length of a run as the killed runs make it: a forked child, without a fresh interpreter's
    # imports (timing the command above counted them, so random kill times fell after the end)
    t0 = time.monotonic()
    timed = ForkedTrainGan(train_cmd(data, tmp_path / "timed" / RUN)[3:], tmp_path / "timed.log", WRITE_DELAY_S)
    assert timed.wait(600) == 0
    run_s = time.monotonic() - t0

    rng = np.random.default_rng(KILL_RNG_SEED)
    points = kill_points(rng, 4, run_s)
    report = []
    for i, point in enumerate(points):
        out = tmp_path / f"k{i}" / RUN
        state = Path(f"{out}.state")
        args = train_cmd(data, out)[3:]
        proc = ForkedTrainGan(args, tmp_path / f"k{i}.log", WRITE_DELAY_S)
        kill_at(proc, point, out, state, rng)
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode)
        found = assert_nothing_half_written(out, state, reference)
        run_to_end(args, tmp_path / f"k{i}.rerun.log")
        report.append(assert_resumed_bitwise(point, found, out, state, reference))
    print_kill_points(f"train-gan (a run with write delays takes {run_s:.1f} s)", report)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_snakemake_killed_at_any_instant_resumes_bitwise(data, reference, tmp_path):
    """The whole snakemake run (and its train_gan job) killed inside a checkpoint write, inside
    the publish of the outputs and at a random time; after each kill no output is half-written,
    and `snakemake --unlock` plus the same command resume to the uninterrupted run's weights."""
    rng = np.random.default_rng(KILL_RNG_SEED + 1)
    points = [("checkpoint", int(rng.integers(1, STEPS // 10 + 1))), ("publish", int(rng.integers(1, 7))),
              ("time", float(rng.uniform(0.0, 15.0)))]
    delayed = {**ENV, io.WRITE_DELAY_ENV: str(WRITE_DELAY_S)}
    report = []
    for i, point in enumerate(points):
        work = tmp_path / f"wf{i}"
        run, out, state = train_gan_workflow(work, data)
        with open(tmp_path / f"snakemake_k{i}.log", "w") as log:
            proc = subprocess.Popen(run, stdout=log, stderr=subprocess.STDOUT, env=delayed, start_new_session=True)
            kill_at(proc, point, out, state, rng)
        found = assert_nothing_half_written(out, state, reference)
        unlock_and_rerun(work, run)
        report.append(assert_resumed_bitwise(point, found, out, state, reference))
    print_kill_points("snakemake", report)
