"""The one GAN trainer: batches, exact resume, NaN guard, checkpoints, logs, bf16."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from fairgen.common.config import seed_for, validate
from fairgen.common.errors import CheckpointError, ConfigError, DataError, FormatVersionError, TrainingDivergedError
from fairgen.models import build
from fairgen.training import ArrayBatches, TrainConfig, Trainer, load_checkpoint, load_gan, seed_everything
from fairgen.training.batches import to_float_images, to_uint8_images
from fairgen.training.logs import read_jsonl

# small label-conditional model with BN, dropout (global RNG) and an embedding
CGAN = {"z_dim": 16, "embed_dim": 8, "g_widths": [16, 8, 4], "d_widths": [8, 8]}
VANILLA = {"z_dim": 8, "hidden": [16], "img_shape": [1, 8, 8]}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # the shared test machine is oversubscribed; 1 thread is fastest there


def images(n, hw, c=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, hw, hw, c), dtype=np.uint8)


def cgan_data():
    return ArrayBatches(images(40, 28), {"label": np.arange(40) % 10})


def make(name, kw, seed=0):
    seed_everything(seed)
    return build(name, **kw)


def fast(**kw):
    base = dict(progress=False, batch_size=8, log_every=2, sample_every=1000, checkpoint_every=1000)
    return {**base, **kw}


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ batches
def test_array_batches_convert_on_the_fly():
    u8 = images(6, 4, c=3)
    u8[0] = 0
    u8[1] = 255
    src = ArrayBatches(u8, {"c": np.array([0, 1, 0, 1, 1, 0]), "y": np.array([1, 0, 1, 1, 0, 0]),
                            "label": np.arange(6)})
    assert src.keys == ("x", "c", "y", "label")
    src.bind(torch.device("cpu"), seed=3)
    b = src.take(torch.tensor([0, 1, 2]))
    assert b["x"].shape == (3, 3, 4, 4) and b["x"].dtype == torch.float32
    assert b["x"].is_contiguous(memory_format=torch.channels_last)
    assert b["x"][0].eq(-1).all() and b["x"][1].eq(1).all()
    assert torch.allclose(b["x"][2], torch.from_numpy(u8[2]).permute(2, 0, 1).float() / 127.5 - 1)
    assert b["c"].dtype == torch.long and b["y"].dtype == torch.float32 and b["label"].dtype == torch.long
    assert torch.equal(to_uint8_images(to_float_images(torch.from_numpy(u8))), torch.from_numpy(u8))

    batch = src.sample(5)
    assert batch["x"].shape == (5, 3, 4, 4)
    # each label row belongs to the same image as its x row
    for i in range(5):
        j = int(batch["label"][i])
        assert torch.equal(batch["x"][i], to_float_images(torch.from_numpy(u8[j:j + 1]))[0])


def test_array_batches_seeded_and_restorable():
    a, b = ArrayBatches(images(50, 4)), ArrayBatches(images(50, 4))
    a.bind(torch.device("cpu"), 7)
    b.bind(torch.device("cpu"), 7)
    assert torch.equal(a.sample(8)["x"], b.sample(8)["x"])
    state = a.state_dict()
    first = a.sample(8)["x"]
    a.load_state_dict(state)
    assert torch.equal(a.sample(8)["x"], first)
    with pytest.raises(RuntimeError, match="bind"):
        ArrayBatches(images(5, 4)).sample(2)


def test_array_batches_reject_bad_input():
    with pytest.raises(DataError, match="crops.npy: expected uint8 images"):
        ArrayBatches(np.zeros((4, 8, 8, 3), np.float32), name="crops.npy")
    with pytest.raises(DataError, match="expected uint8 images"):
        ArrayBatches(np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(DataError, match="label 'c' has shape \\(3,\\), expected \\(4,\\)"):
        ArrayBatches(np.zeros((4, 8, 8, 3), np.uint8), {"c": np.zeros(3)})


def test_trainer_checks_data_keys_and_settings():
    with pytest.raises(DataError, match="needs batch key\\(s\\) \\['label'\\]"):
        Trainer(build("cgan", **CGAN), ArrayBatches(images(4, 28)), "unused")
    with pytest.raises(ConfigError, match="lr_decay"):
        Trainer(build("vanilla", **VANILLA), ArrayBatches(images(4, 8)), "unused", lr_decay="cosine")


def test_device_cuda_trains_on_the_gpu_or_is_a_clear_error(tmp_path):
    """device='cuda': on a GPU host the run trains there (weights, checkpoint and noise stream on
    CUDA); without a GPU it is a ConfigError before anything is written. Each host checks its branch."""
    t = Trainer(build("vanilla", **VANILLA), ArrayBatches(images(8, 8)), tmp_path / "run", device="cuda", steps=2,
                batch_size=4, log_every=1, sample_every=2, checkpoint_every=2, progress=False)
    if torch.cuda.is_available():
        summary = t.fit()
        assert summary["device"].startswith("cuda") and summary["steps"] == 2
        assert all(p.is_cuda for p in t.gan.parameters())
        assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["noise_generator"]["device"] == "cuda"
    else:
        with pytest.raises(ConfigError, match="no CUDA device"):
            t.fit()
        assert not (tmp_path / "run").exists()


def test_train_config_from_project_config():
    cfg = validate({"seed": 5, "gan": {"steps": 7, "betas": [0.5, 0.99]}, "precision": "bf16"})
    tc = TrainConfig.from_config(cfg, stage="gan_acgan", progress=False)
    assert (tc.steps, tc.betas, tc.lr_decay, tc.precision) == (7, (0.5, 0.99), "linear", "bf16")
    averaged = validate({"gan": {"experimental": {"ema_decay": 0.9}}})
    assert TrainConfig.from_config(averaged, progress=False).ema_decay == 0.9
    assert tc.seed == seed_for(cfg, "gan_acgan") and tc.progress is False


# ------------------------------------------------------------------ resume
class FaultyBatches(ArrayBatches):
    """Simulates faults: raises after ``crash_after`` batches (a killed process), or returns
    all-NaN images from batch number ``nan_from`` on."""

    def __init__(self, *a, crash_after: int | None = None, nan_from: int | None = None, **kw):
        super().__init__(*a, **kw)
        self.crash_after, self.nan_from, self.calls = crash_after, nan_from, 0

    def sample(self, n):
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise KeyboardInterrupt("simulated crash")
        b = super().sample(n)
        if self.nan_from is not None and self.calls >= self.nan_from:
            b["x"] = torch.full_like(b["x"], float("nan"))
        return b


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_equals_uninterrupted_run(tmp_path, ema_decay):
    settings = fast(steps=10, n_dis=2, lr_decay="linear", checkpoint_every=4, sample_every=5, seed=11,
                    ema_decay=ema_decay)
    straight = Trainer(make("cgan", CGAN), cgan_data(), tmp_path / "a", **settings)
    s_a = straight.fit()

    crashing = FaultyBatches(images(40, 28), {"label": np.arange(40) % 10}, crash_after=2 * 6 + 1)
    with pytest.raises(KeyboardInterrupt):
        Trainer(make("cgan", CGAN), crashing, tmp_path / "b", **settings).fit()
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 4

    # a fresh process: new model object (other init seed, to show weights come from the checkpoint)
    resumed = Trainer(make("cgan", CGAN, seed=99), cgan_data(), tmp_path / "b", **settings)
    s_b = resumed.fit()
    assert s_b["resumed_from"] == 4 and s_b["steps_this_run"] == 6 and s_a["resumed_from"] is None

    for part in ("G", "D"):
        a = getattr(straight.gan, part).state_dict()
        b = getattr(resumed.gan, part).state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{part}.{k} differs after resume"
    if ema_decay:
        a, b = straight.g_ema.state_dict(), resumed.g_ema.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), "G's moving average differs after resume"
        live = straight.gan.G.state_dict()
        assert any(not torch.equal(a[k], live[k]) for k in a), "the average should differ from G"
    else:
        assert straight.g_ema is None and load_checkpoint(tmp_path / "a" / "checkpoint.pt")["G_ema"] is None
    assert straight.opt_g.param_groups[0]["lr"] == resumed.opt_g.param_groups[0]["lr"] == 0.0

    # the log of the resumed run holds each step once, with the same values as the straight run
    la, lb = read_jsonl(tmp_path / "a" / "log.jsonl"), read_jsonl(tmp_path / "b" / "log.jsonl")
    strip = [{k: v for k, v in r.items() if k not in ("time_s", "images_per_s")} for r in (*la, *lb)]
    assert [r["step"] for r in lb] == [2, 4, 6, 8, 10]
    assert strip[:5] == strip[5:]

    # running again with everything done trains nothing and leaves the checkpoint alone
    before = sha(tmp_path / "b" / "checkpoint.pt")
    again = Trainer(make("cgan", CGAN), cgan_data(), tmp_path / "b", **settings).fit()
    assert again["steps_this_run"] == 0 and sha(tmp_path / "b" / "checkpoint.pt") == before


class SnapshotTrainer(Trainer):
    """Records G's parameters after every iteration (the trajectory the moving average follows)."""

    def _iteration(self):
        super()._iteration()
        self.snapshots.append([p.detach().clone() for p in self.gan.G.parameters()])


def test_ema_is_the_warmed_up_moving_average_of_g_and_leaves_training_alone(tmp_path):
    decay, steps = 0.8, 6
    plain = SnapshotTrainer(make("cgan", CGAN), cgan_data(), tmp_path / "plain", **fast(steps=steps, seed=3))
    plain.snapshots = []
    initial = [p.detach().clone() for p in plain.gan.G.parameters()]
    plain.fit()
    averaged = Trainer(make("cgan", CGAN), cgan_data(), tmp_path / "ema", **fast(steps=steps, seed=3, ema_decay=decay))
    averaged.fit()
    # the average only reads G: training itself is unchanged
    for a, b in zip(plain.gan.G.state_dict().values(), averaged.gan.G.state_dict().values()):
        assert torch.equal(a, b)
    expected = initial
    for t, weights in enumerate(plain.snapshots):
        d = min(decay, (1 + t) / (10 + t))
        expected = [d * e + (1 - d) * w for e, w in zip(expected, weights)]
    got = list(averaged.g_ema.parameters())
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    # buffers (batch-norm statistics) are G's own, copied
    live = dict(averaged.gan.G.named_buffers())
    for name, buf in averaged.g_ema.named_buffers():
        assert torch.equal(buf, live[name]), name
    # the checkpoint keeps the average; load_gan samples from it, D as trained
    ck = load_checkpoint(tmp_path / "ema" / "checkpoint.pt")
    assert ck["train"]["ema_decay"] == decay and "ema_decay" not in load_checkpoint(
        tmp_path / "plain" / "checkpoint.pt")["train"]
    loaded = load_gan(tmp_path / "ema" / "checkpoint.pt")
    for k, v in loaded.G.state_dict().items():
        assert torch.equal(v, ck["G_ema"][k]), k
    assert any(not torch.equal(ck["G_ema"][k], ck["G"][k]) for k in ck["G"])
    for k, v in loaded.D.state_dict().items():
        assert torch.equal(v, ck["D"][k]), k
    # sample grids come from the average, and G is itself again afterwards
    with averaged.sampling_weights() as g:
        assert g is averaged.g_ema and averaged.gan.G is averaged.g_ema
    assert averaged.gan.G is not averaged.g_ema


def test_ema_decay_out_of_range_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="ema_decay"):
        Trainer(make("cgan", CGAN), cgan_data(), tmp_path, **fast(steps=2, ema_decay=1.0))


def test_outputs_logs_samples_and_summary(tmp_path):
    (tmp_path / "log.jsonl").write_text('{"step": 3, "loss_d": 9.0}\n')  # an attempt that never checkpointed
    s = Trainer(make("cgan", CGAN), cgan_data(), tmp_path, **fast(steps=6, log_every=3, sample_every=3)).fit()
    recs = read_jsonl(tmp_path / "log.jsonl")
    assert [r["step"] for r in recs] == [3, 6] and recs[0]["loss_d"] != 9.0
    for key in ("loss_d", "loss_g", "d_acc_real", "d_acc_fake", "g_fool_rate", "lr_g", "lr_d", "images_per_s"):
        assert isinstance(recs[-1][key], float), key
    assert s["samples"] == [str(tmp_path / "samples" / f"step_{i:07d}.png") for i in (3, 6)]
    with Image.open(s["samples"][0]) as im:  # 64 fixed samples, 10 per row (one class per column)
        assert im.size == (10 * 30 + 2, 7 * 30 + 2)
    with Image.open(s["loss_curve"]) as im:
        assert im.format == "PNG"
    assert s["steps"] == 6 and s["last"]["step"] == 6 and s["images_per_s"] > 0
    json.dumps(s)  # the summary is JSON-able as is


# ------------------------------------------------------------------ NaN guard
@pytest.mark.parametrize("log_every,nan_from,steps_msg", [(5, 4, "between steps 4 and 5"),
                                                          (100, 5, "between steps 4 and 6")],
                         ids=["caught-at-log", "caught-before-checkpoint"])
def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path, log_every, nan_from, steps_msg):
    src = FaultyBatches(images(20, 8), nan_from=nan_from)
    t = Trainer(make("vanilla", VANILLA), src, tmp_path, **fast(steps=20, log_every=log_every, checkpoint_every=3))
    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(TrainingDivergedError, match=steps_msg) as err:
        t.fit()
    assert str(ckpt) in str(err.value) and "step 3" in str(err.value)
    assert load_checkpoint(ckpt)["step"] == 3
    gan = load_gan(ckpt)
    assert all(torch.isfinite(p).all() for p in gan.parameters())
    if log_every == 5:  # the diverged interval is in the log, with null (non-finite) losses
        assert read_jsonl(tmp_path / "log.jsonl")[-1]["loss_d"] is None
    # a rerun resumes from the good checkpoint, and the log keeps only the steps up to it
    t2 = Trainer(make("vanilla", VANILLA), FaultyBatches(images(20, 8), nan_from=1), tmp_path,
                 **fast(steps=20, log_every=log_every, checkpoint_every=3))
    with pytest.raises(TrainingDivergedError, match="between steps 4 and"):
        t2.fit()
    assert all(r["step"] <= 3 or r["loss_d"] is None for r in read_jsonl(tmp_path / "log.jsonl"))


# ------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("vanilla")
    t = Trainer(make("vanilla", VANILLA), ArrayBatches(images(20, 8)), out, **fast(steps=3))
    t.fit()
    return out, t


def test_checkpoint_is_weights_only_safe(trained):
    out, t = trained
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["kind"] == "gan_checkpoint" and ck["format_version"] == 1 and ck["step"] == 3
    assert ck["model"] == {"name": "vanilla", "config": t.gan.config}
    assert {"torch", "cuda", "numpy", "python"} <= set(ck["rng"])
    assert isinstance(ck["rng"]["numpy"]["keys"], torch.Tensor) and len(ck["rng"]["python"]["state"]) == 625
    assert ck["fixed_latent"]["z"].shape == (64, 8)
    gan = load_gan(out / "checkpoint.pt")
    for k, v in t.gan.G.state_dict().items():
        assert torch.equal(gan.G.state_dict()[k], v)


def test_checkpoint_for_another_model_or_setting_is_refused(trained, tmp_path):
    out, _ = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    before = sha(run / "checkpoint.pt")
    data = ArrayBatches(images(20, 8))
    with pytest.raises(CheckpointError, match="another 'vanilla' configuration.*hidden: \\[16\\] vs \\[32\\]"):
        Trainer(build("vanilla", **{**VANILLA, "hidden": [32]}), data, run, **fast(steps=5)).fit()
    with pytest.raises(CheckpointError, match="checkpoint is for model 'vanilla', not 'toy'"):
        Trainer(build("toy"), data, run, **fast(steps=5)).fit()
    with pytest.raises(CheckpointError, match="other training settings.*lr_g: 0.0002 vs 0.001"):
        Trainer(build("vanilla", **VANILLA), data, run, **fast(steps=5, lr_g=1e-3)).fit()
    assert sha(run / "checkpoint.pt") == before


def test_corrupted_truncated_and_wrong_version_checkpoints(trained, tmp_path):
    out, _ = trained
    good = (out / "checkpoint.pt").read_bytes()
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="garbage.pt: not a readable checkpoint"):
        load_checkpoint(bad)
    cut = tmp_path / "truncated.pt"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt: not a readable checkpoint"):
        load_checkpoint(cut)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    ck["format_version"] = 99
    old = tmp_path / "v99.pt"
    torch.save(ck, old)
    with pytest.raises(FormatVersionError, match="format version 99"):
        load_checkpoint(old)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a fairgen GAN checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    # a corrupted checkpoint in a run folder stops the trainer with the same clear error
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(good[:100])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Trainer(build("vanilla", **VANILLA), ArrayBatches(images(20, 8)), run, **fast(steps=5)).fit()


# ------------------------------------------------------------------ bf16
def test_bf16_autocast_trains_on_cpu(tmp_path):
    gan = make("dcgan64", {"ngf": 4, "ndf": 4, "img_size": 16})
    t = Trainer(gan, ArrayBatches(images(16, 16, c=3)), tmp_path, **fast(steps=3, precision="bf16"))
    s = t.fit()
    assert s["precision"] == "bf16" and np.isfinite(s["last"]["loss_d"]) and np.isfinite(s["last"]["loss_g"])
    assert t.sample_fixed()["x"].dtype == torch.bfloat16  # forward passes really ran in bf16
    assert all(p.dtype == torch.float32 for p in gan.parameters())  # weights stay fp32


# ------------------------------------------------------------------ logs
def test_jsonl_log_survives_a_torn_line_and_resume_truncation(tmp_path):
    from fairgen.training.logs import append_jsonl, plot_loss_curves, truncate_jsonl

    path = tmp_path / "log.jsonl"
    for step, loss in ((2, 1.0), (4, None), (6, 0.5)):
        append_jsonl({"step": step, "loss_d": loss, "d_acc_real": 0.5}, path)
    with open(path, "a") as f:
        f.write('{"step": 8, "loss_d"')  # a crash mid-write
    assert [r["step"] for r in read_jsonl(path)] == [2, 4, 6]
    truncate_jsonl(path, 4)
    assert [r["step"] for r in read_jsonl(path)] == [2, 4]
    out = plot_loss_curves(read_jsonl(path), tmp_path / "curve.png")  # null (non-finite) values are gaps
    with Image.open(out) as im:
        assert im.format == "PNG"
