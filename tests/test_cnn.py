"""The shared small-CNN stack (fairgen.eval.cnn): network builder, runner and fit loop."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from fairgen.common.errors import DataError
from fairgen.eval import cnn


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _images(n=10, size=16, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def test_default_network_is_the_outcome_classifiers():
    """Defaults: two conv-BN-ReLU blocks per stage and a max-pool, stages by input size, a last
    block, average pooling, flatten, dropout 0.2, one linear output."""
    assert [cnn.default_stages(s) for s in (8, 16, 32, 64, 128, 512)] == [1, 2, 3, 4, 5, 5]
    net = cnn.build_cnn(16, width=4)
    block = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert [type(m) for m in net] == (block * 2 + [nn.MaxPool2d]) * 2 + block + [
        nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Linear]
    assert [m.out_channels for m in net if isinstance(m, nn.Conv2d)] == [4, 4, 8, 8, 8]
    assert net[-2].p == 0.2 and net.head is net[-1] and net.head.out_features == 1 and net.feature_dim == 8
    assert all(m.momentum == 0.1 for m in net if isinstance(m, nn.BatchNorm2d))
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 1)


def test_builder_options_and_features():
    net = cnn.build_cnn(channels=1, n_out=10, width=4, stages=3, convs=1, dropout=0.0, bn_momentum=0.3)
    assert [m.out_channels for m in net if isinstance(m, nn.Conv2d)] == [4, 8, 16, 16]
    assert net[0].in_channels == 1 and net.feature_dim == 16 and net.head.out_features == 10
    assert all(m.momentum == 0.3 for m in net if isinstance(m, nn.BatchNorm2d))
    net.eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        f = net.features(x)
        assert f.shape == (3, 16) and torch.equal(net.head(f), net(x))
    with pytest.raises(ValueError, match="input size or the number of stages"):
        cnn.build_cnn()


def test_same_seed_same_initial_weights():
    torch.manual_seed(3)
    a = cnn.build_cnn(32, width=4).state_dict()
    torch.manual_seed(3)
    b = cnn.build_cnn(32, width=4).state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_runner_outputs():
    torch.manual_seed(0)
    images = _images(7)
    runner = cnn.Runner(cnn.build_cnn(16, width=4), "cpu", "fp32", batch_size=3)
    out = runner.run(images, ("logits", "probs", "features"), progress=False)
    assert out["logits"].shape == out["probs"].shape == (7,) and out["features"].shape == (7, 8)
    assert all(v.dtype == np.float64 for v in out.values())
    np.testing.assert_allclose(out["probs"], 1 / (1 + np.exp(-out["logits"])), rtol=1e-6)
    # the features are the network's features() of the images scaled to [-1, 1], in eval mode
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        np.testing.assert_allclose(out["features"], runner.model.features(x).double().numpy(), rtol=1e-5, atol=1e-6)
    # a device tensor of the images gives the same numbers; so does predict
    again = runner.run(runner.tensor(images), ("logits", "features"), progress=False)
    assert np.array_equal(again["logits"], out["logits"]) and np.array_equal(again["features"], out["features"])
    assert np.array_equal(runner.predict(images, progress=False), out["probs"])
    empty = runner.run(images[:0], ("logits", "probs", "features"), progress=False)
    assert empty["logits"].shape == (0,) and empty["features"].shape == (0, 8)
    with pytest.raises(ValueError, match="unknown outputs"):
        runner.run(images, ("scores",))


def test_runner_softmax_and_unsqueezed_outputs():
    soft = cnn.Runner(cnn.build_cnn(16, n_out=4, width=4), "cpu", batch_size=4, activation="softmax")
    p = soft.predict(_images(5), progress=False)
    assert p.shape == (5, 4) and np.allclose(p.sum(1), 1)
    one = cnn.Runner(cnn.build_cnn(16, n_out=1, width=4), "cpu", squeeze=False)
    assert one.predict(_images(5), progress=False).shape == (5, 1)
    assert one.run(_images(0), ("probs",), progress=False)["probs"].shape == (0, 1)


def test_runner_batch_flips_and_shifts():
    runner = cnn.Runner(cnn.build_cnn(16, width=4), "cpu")
    images = runner.tensor(_images(2))
    idx = torch.arange(2)
    plain = runner.batch(images, idx)
    assert plain.min() >= -1 and plain.max() <= 1
    flipped = runner.batch(images, idx, flip=torch.tensor([True, False]))
    assert torch.equal(flipped[0], plain[0].flip(-1)) and torch.equal(flipped[1], plain[1])
    moved = runner.batch(images, idx, shift=torch.tensor([[0, 0], [1, 0]]))
    assert torch.equal(moved[0], plain[0]) and torch.equal(moved[1, :, 1:], plain[1, :, :-1])


def _fit(seed=0, n=10, **kw):
    torch.manual_seed(0)
    runner = cnn.Runner(cnn.build_cnn(16, n_out=2, width=4), "cpu", batch_size=4, squeeze=False)
    images = _images(n)
    targets = torch.from_numpy(np.random.default_rng(1).integers(0, 2, (n, 2)).astype(np.float32))
    seen_rows = []

    def loss(x, idx):
        seen_rows.append(idx.tolist())
        value = nn.functional.binary_cross_entropy_with_logits(runner.logits(x), targets[idx])
        return value, {"loss": value.detach() * len(idx), "steps": torch.ones(())}

    records = cnn.fit(runner, images, loss, seed=seed, lr=1e-2, progress=False, **kw)
    return runner, records, seen_rows


def test_fit_epochs_batches_and_records():
    runner, records, rows = _fit(n=9, epochs=2)  # 9 images in batches of 4: 4, 4 and a skipped 1
    assert [r["epoch"] for r in records] == [1, 2]
    assert [(r["seen"], r["steps"], r["sums"]["steps"]) for r in records] == [(8, 2, 2.0)] * 2
    assert [len(r) for r in rows] == [4, 4, 4, 4]
    assert len(set(sum(rows[:2], []))) == 8  # one epoch: distinct rows, in a random order
    assert records[0]["sums"]["loss"] > 0


def test_fit_is_seeded():
    def weights(seed):
        runner, _, rows = _fit(seed=seed, epochs=2)
        return [v.clone() for v in runner.model.state_dict().values()], rows

    (a, rows_a), (b, rows_b), (c, rows_c) = weights(0), weights(0), weights(1)
    assert rows_a == rows_b and all(torch.equal(x, y) for x, y in zip(a, b))
    assert rows_a != rows_c and not all(torch.equal(x, y) for x, y in zip(a, c))


def test_fit_step_budget_schedule_and_augment_hook():
    calls = []

    def augment(x, gen):
        calls.append(torch.rand(1, generator=gen).item())
        return x

    runner, records, rows = _fit(n=10, steps=7, schedule="cosine", augment=augment, flips=True, shift=1)
    # 10 images in batches of 4: 3 steps per epoch (4, 4, 2), so 7 steps are 2 epochs and one step
    assert [r["steps"] for r in records] == [3, 3, 1] and len(rows) == len(calls) == 7
    assert len(set(calls)) == 7  # drawn from the loop's generator, step after step


def test_fit_rejects_bad_budgets_and_too_few_images():
    with pytest.raises(ValueError, match="exactly one of epochs and steps"):
        _fit(epochs=1, steps=3)
    with pytest.raises(ValueError, match="exactly one of epochs and steps"):
        _fit()
    with pytest.raises(ValueError, match="schedule"):
        _fit(epochs=1, schedule="step")
    with pytest.raises(DataError, match="at least 2 training images"):
        _fit(n=1, epochs=1)


def test_fit_trains_extra_parameters_and_calls_on_epoch():
    extra = nn.Linear(2, 1)
    before = extra.weight.detach().clone()
    torch.manual_seed(0)
    runner = cnn.Runner(cnn.build_cnn(16, n_out=2, width=4), "cpu", batch_size=5, squeeze=False)
    epochs = []

    def loss(x, idx):
        value = extra(runner.logits(x)).pow(2).mean()
        return value, {}

    cnn.fit(runner, _images(10), loss, seed=0, lr=0.1, epochs=2, extra_params=extra.parameters(),
            on_epoch=lambda r: epochs.append((r["epoch"], runner.model.training)), progress=False)
    assert not torch.equal(extra.weight, before)
    assert epochs == [(1, True), (2, True)]  # called after each epoch's steps, before any evaluation
