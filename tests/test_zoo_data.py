"""Zoo datasets: the embedded digits and CIFAR stand-in, the torchvision MNIST / CIFAR-10 paths
(read from local roots in torchvision's own file formats, never downloaded), and the packed
folder format written by ``fairgen zoo-data``."""

import json
import pickle
import struct

import numpy as np
import pytest

from fairgen import cli
from fairgen.common import config
from fairgen.common.errors import ConfigError, DataError
from fairgen.data import zoo_data as zd


@pytest.fixture(scope="module")
def digits():
    return zd.load_digits()


def _cfg(**zoo):
    return config.validate({"zoo": zoo})


# ------------------------------------------------------------------------------------- digits


def test_digits_are_the_real_sklearn_digits_upsampled_mnist_style(digits):
    from sklearn.datasets import load_digits

    raw = load_digits()
    assert digits.images.shape == (1797, 28, 28, 1) and digits.images.dtype == np.uint8
    assert np.array_equal(digits.labels, raw.target) and digits.class_names == [str(i) for i in range(10)]
    assert np.bincount(digits.labels).min() >= 170  # ~180 per class
    # MNIST layout: the digit sits in a 20x20 box centred in a black 28x28 frame
    assert digits.images[:, :4].max() == 0 and digits.images[:, 24:].max() == 0
    assert digits.images[:, :, :4].max() == 0 and digits.images[:, :, 24:].max() == 0
    assert digits.images.max() == 255
    # area-averaging the 20x20 box back to 8x8 recovers the original 0..16 counts closely
    box = digits.images[:, 4:24, 4:24, 0].astype(np.float64)
    back = zd.resize_images(box.astype(np.uint8)[..., None], 8)[..., 0] / 255.0 * 16
    corr = np.corrcoef(back.ravel(), raw.images.ravel())[0, 1]
    assert corr > 0.95
    assert not digits.info["standin"] and "not MNIST" in digits.info["note"]


def test_digits_at_acgan_shape_replicate_grey_into_rgb():
    d = zd.load_digits(size=32, channels=3)
    assert d.images.shape == (1797, 32, 32, 3)
    assert np.array_equal(d.images[..., 0], d.images[..., 1]) and np.array_equal(d.images[..., 0], d.images[..., 2])
    box = round(32 * 20 / 28)  # 23 px, top-left at 4
    assert d.images[:, :4].max() == 0 and d.images[:, 4 + box:].max() == 0


def test_resize_and_channel_conversion_round_trips(digits):
    assert zd.resize_images(digits.images, 28) is digits.images  # same size: untouched
    rgb = zd.set_channels(digits.images[:50], 3)
    assert np.array_equal(zd.set_channels(rgb, 1), digits.images[:50])  # luma of grey == grey
    up = zd.resize_images(digits.images[:50], 56)
    down = zd.resize_images(up, 28)
    assert np.abs(down.astype(int) - digits.images[:50].astype(int)).mean() < 6
    c = zd.conform(digits, 32, 3)
    assert c.images.shape[1:] == (32, 32, 3) and c.info["converted_from"] == [28, 28, 1]
    assert zd.conform(digits, 28, 1) is digits


# ------------------------------------------------------------------------------------- stand-in


def test_cifar_standin_is_seeded_balanced_and_labelled_a_standin():
    a = zd.make_cifar_standin(60, seed=3, progress=False)
    b = zd.make_cifar_standin(60, seed=3, progress=False)
    c = zd.make_cifar_standin(60, seed=4, progress=False)
    assert a.images.shape == (60, 32, 32, 3) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert np.bincount(a.labels, minlength=10).tolist() == [6] * 10
    assert a.class_names == zd.STANDIN_CLASSES and a.info["standin"] is True
    assert "STAND-IN" in a.info["note"] and "not CIFAR-10" in a.info["note"]
    # images vary within a class (random position/colour/texture), not copies of one template
    same = a.images[a.labels == 0].astype(int)
    assert np.abs(same[0] - same[1]).mean() > 10


def test_cifar_standin_classes_are_visually_distinct():
    """A linear classifier on 8x8 thumbnails separates the ten classes far above chance."""
    from sklearn.linear_model import LogisticRegression

    d = zd.make_cifar_standin(500, seed=0, progress=False)
    x = zd.resize_images(d.images, 8).reshape(len(d.labels), -1) / 255.0
    clf = LogisticRegression(max_iter=2000).fit(x[:400], d.labels[:400])
    assert clf.score(x[400:], d.labels[400:]) > 0.6  # chance 0.1


# ------------------------------------------------------------------------------------- torchvision


def _write_idx(path, array, magic):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in array.shape))
        f.write(np.ascontiguousarray(array, np.uint8).tobytes())


def _fake_mnist(root, n=12):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    for split in ("train", "t10k"):
        _write_idx(raw / f"{split}-images-idx3-ubyte", images, 2051)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels, 2049)
    return images, labels


def test_mnist_reads_a_local_root_in_torchvision_format(tmp_path):
    images, labels = _fake_mnist(tmp_path)
    d = zd.load_mnist(root=tmp_path, download=True)  # a local root is read, never downloaded into
    assert d.images.shape == (12, 28, 28, 1)
    assert np.array_equal(d.images[..., 0], images) and np.array_equal(d.labels, labels.astype(np.int64))
    assert d.info["dataset"] == "mnist" and d.class_names[3] == "3"


def test_mnist_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="zoo.mnist_root"):
        zd.load_mnist(root=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot read MNIST under .*MNIST/raw"):
        zd.load_mnist(root=tmp_path / "empty")
    # the download root without download permission: no network is touched
    with pytest.raises(DataError, match="set zoo.download: true"):
        zd.load_mnist(root=None, data_root=tmp_path / "dl", download=False)


def test_cifar10_reads_a_local_root_in_torchvision_format(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    # the real files carry MD5s that fake files cannot match: check only the reading path
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", None] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", None]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": None})
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    chw = rng.integers(0, 256, (10, 3, 32, 32), dtype=np.uint8)  # CIFAR stores R, G, B planes
    labels = list(range(10))
    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": chw[2 * (i - 1):2 * i].reshape(2, -1), "labels": labels[2 * (i - 1):2 * i]}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": chw[:2].reshape(2, -1), "labels": labels[:2]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": zd.CIFAR10_NAMES}, f)
    d = zd.load_cifar10(root=tmp_path)
    assert d.images.shape == (10, 32, 32, 3)
    assert np.array_equal(d.images, chw.transpose(0, 2, 3, 1)) and d.labels.tolist() == labels
    assert d.class_names == zd.CIFAR10_NAMES and d.info["standin"] is False


def test_cifar10_without_files_is_a_clear_error(tmp_path):
    (tmp_path / "c").mkdir()
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        zd.load_cifar10(root=tmp_path / "c")


# ------------------------------------------------------------------------------------- folder format


def test_write_read_round_trip_and_bad_folders(tmp_path, digits):
    info = zd.write(digits, tmp_path / "d")
    assert info["n_images"] == 1797 and info["shape"] == [28, 28, 1] and sum(info["class_counts"]) == 1797
    back = zd.read(tmp_path / "d")
    assert np.array_equal(back.images, digits.images) and np.array_equal(back.labels, digits.labels)
    assert back.info["fingerprint"] == zd.fingerprint(digits.images, digits.labels)
    assert zd.read(tmp_path / "d", mmap=True).images.shape == digits.images.shape

    with pytest.raises(DataError, match="file not found"):
        zd.read(tmp_path / "missing")
    meta = json.loads((tmp_path / "d" / "info.json").read_text())
    (tmp_path / "d" / "info.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(DataError, match="format version 99"):
        zd.read(tmp_path / "d")
    (tmp_path / "d" / "info.json").write_text(json.dumps({**meta, "n_images": 5}))
    with pytest.raises(DataError, match="does not match"):
        zd.read(tmp_path / "d")
    (tmp_path / "d" / "info.json").write_text(json.dumps(meta))
    np.save(tmp_path / "d" / "labels.npy", np.full(1797, 12))
    with pytest.raises(DataError, match="outside 0..9"):
        zd.read(tmp_path / "d")


def test_zoo_data_cli_writes_the_folder_and_reports_errors(tmp_path, capsys):
    out = tmp_path / "digits32"
    assert cli.main(["zoo-data", "--dataset", "digits", "--out-dir", str(out), "--size", "32", "--channels", "3"]) == 0
    d = zd.read(out)
    assert d.images.shape == (1797, 32, 32, 3) and d.info["dataset"] == "digits"
    rc = cli.main(["zoo-data", "--dataset", "mnist", "--out-dir", str(tmp_path / "m"),
                   "--set", f"zoo.mnist_root={tmp_path / 'absent'}"])
    assert rc == 2 and "zoo.mnist_root" in capsys.readouterr().err
    assert not (tmp_path / "m" / "info.json").exists()


def test_load_dispatch_and_config_defaults():
    cfg = _cfg(cifar_standin={"n_images": 20})
    assert cfg["zoo"]["acgan"]["dataset"] == "cifar_standin" and cfg["zoo"]["cgan"]["batch_size"] == 32
    assert cfg["zoo"]["acgan"]["lr"] == 0.0002 and cfg["zoo"]["acgan"]["betas"] == [0.5, 0.999]
    assert cfg["zoo"]["acgan"]["batch_size"] == 100 and cfg["zoo"]["vanilla"]["batch_size"] == 128
    d = zd.load(cfg, "cifar_standin")
    assert d.images.shape == (20, 32, 32, 3)
    assert zd.load(cfg, "cifar_standin", 28, 1).images.shape == (20, 28, 28, 1)
    with pytest.raises(ConfigError, match="unknown zoo dataset"):
        zd.load(cfg, "svhn")
    with pytest.raises(ConfigError, match="zoo"):
        _cfg(acgan={"dataset": "digits"})  # the CIFAR AC-GAN run takes CIFAR-style data only
