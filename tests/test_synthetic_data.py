import logging
import os

import numpy as np
import pytest
from PIL import Image

from fairgen.common import io
from fairgen.common.errors import DataError, FormatVersionError
from fairgen.data.synthetic_set import COLUMNS, PACKED_FILE, SAMPLES_FILE, read_synthetic, write_synthetic

N = 6


def _images(n=N, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "ds"
    images = _images()
    c = np.array([0, 1, 0, 1, 0, 1])
    y_prob = np.array([0.1, 0.5, 0.49, 0.9, 1.0, 0.0])
    write_synthetic(folder, images, c, y_prob, model="fgan_dp", checkpoint_step=300, seed=7,
                    metadata={"run": "fgan_dp"}, progress=False)
    return folder, images, c, y_prob


def _rewrite(folder, mutate):
    """Rewrite samples.parquet with ``mutate(table)`` applied, keeping kind/version/metadata."""
    table, meta = io.read_parquet(folder / SAMPLES_FILE, "synthetic_samples")
    io.write_parquet(mutate(table), folder / SAMPLES_FILE, "synthetic_samples", metadata=meta)


def _set(col, row, value):
    def mutate(t):
        t[col] = t[col].astype(object) if isinstance(value, str) else t[col]
        t.loc[row, col] = value
        return t
    return mutate


def test_round_trip(dataset):
    folder, images, c, y_prob = dataset
    table, got, meta = read_synthetic(folder)
    assert list(table.columns) == list(COLUMNS)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(table["c"], c)
    np.testing.assert_allclose(table["y_prob"], y_prob)
    np.testing.assert_array_equal(table["y"], [0, 1, 0, 1, 1, 0])  # threshold 0.5, inclusive
    assert set(table["model"]) == {"fgan_dp"}
    assert set(table["checkpoint_step"]) == {300} and set(table["seed"]) == {7}
    assert table["path"].iloc[3] == "images/000003.png"
    assert meta["run"] == "fgan_dp" and meta["packed"]["shape"] == [N, 8, 8, 3]
    # the PNG files hold the same pixels as the packed cache
    _, decoded, _ = read_synthetic(folder, use_cache=False)
    np.testing.assert_array_equal(decoded, images)


def test_stale_cache_is_ignored(dataset, caplog):
    folder, images, _, _ = dataset
    np.save(folder / PACKED_FILE, np.zeros_like(images))
    with caplog.at_level(logging.WARNING):
        _, got, _ = read_synthetic(folder)
    np.testing.assert_array_equal(got, images)
    assert "checksum" in caplog.text


def test_missing_cache_falls_back_to_pngs(dataset):
    folder, images, _, _ = dataset
    (folder / PACKED_FILE).unlink()
    np.testing.assert_array_equal(read_synthetic(folder)[1], images)


def test_path_escaping_with_dotdot_is_rejected(dataset, tmp_path):
    folder = dataset[0]
    Image.fromarray(_images(1)[0]).save(tmp_path / "outside.png")  # exists, but outside the folder
    _rewrite(folder, _set("path", 2, "images/../../outside.png"))
    with pytest.raises(DataError, match=r"samples.parquet, row 2 \(sample_id 2\).*outside the dataset folder"):
        read_synthetic(folder)


def test_absolute_path_is_rejected(dataset):
    folder = dataset[0]
    _rewrite(folder, _set("path", 1, str((folder / "images" / "000001.png").resolve())))
    with pytest.raises(DataError, match=r"row 1 \(sample_id 1\).*must be relative"):
        read_synthetic(folder)


def test_symlink_out_of_the_folder_is_rejected(dataset, tmp_path):
    folder = dataset[0]
    Image.fromarray(_images(1)[0]).save(tmp_path / "outside.png")
    link = folder / "images" / "000004.png"
    link.unlink()
    os.symlink(tmp_path / "outside.png", link)
    with pytest.raises(DataError, match=r"row 4 \(sample_id 4\).*outside the dataset folder"):
        read_synthetic(folder)


def test_symlink_inside_the_folder_is_allowed(dataset):
    folder, images, _, _ = dataset
    link = folder / "images" / "000004.png"
    link.unlink()
    os.symlink("000000.png", link)
    _, got, _ = read_synthetic(folder, use_cache=False)
    np.testing.assert_array_equal(got[4], images[0])


def test_missing_image_is_rejected(dataset):
    folder = dataset[0]
    (folder / "images" / "000005.png").unlink()
    with pytest.raises(DataError, match=r"row 5 \(sample_id 5\): image file 'images/000005.png' not found"):
        read_synthetic(folder)


def test_unknown_format_version(dataset, monkeypatch):
    folder = dataset[0]
    table, meta = io.read_parquet(folder / SAMPLES_FILE, "synthetic_samples")
    monkeypatch.setitem(io.FORMAT_VERSIONS, "synthetic_samples", 99)  # as if a newer fairgen wrote it
    io.write_parquet(table, folder / SAMPLES_FILE, "synthetic_samples", metadata=meta)
    monkeypatch.undo()
    with pytest.raises(FormatVersionError, match="format version 99"):
        read_synthetic(folder)


def test_wrong_kind(dataset):
    folder = dataset[0]
    table, _ = io.read_parquet(folder / SAMPLES_FILE, "synthetic_samples")
    io.write_parquet(table, folder / SAMPLES_FILE, "predictions")
    with pytest.raises(DataError, match="expected a fairgen 'synthetic_samples' file"):
        read_synthetic(folder)


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda t: t.drop(columns=["y_prob"]), "missing column"),
        (lambda t: t.assign(c=t["c"].astype(float)), "column 'c' must be integer"),
        (lambda t: t.assign(y_prob=(t["y_prob"] * 100).astype(int)), "column 'y_prob' must be float"),
        (lambda t: t.assign(model=[1, 2, 3, 4, 5, 6]), r"row 0: column 'model' must be a string"),
        (_set("c", 3, 2), r"row 3 \(sample_id 3\): c must be 0 or 1"),
        (_set("y", 0, 1), r"row 0 \(sample_id 0\): y=1 disagrees with y_prob=0.1000"),
        (_set("y_prob", 5, -0.5), r"row 5 \(sample_id 5\): y_prob must lie in \[0, 1\]"),
        (_set("sample_id", 4, 0), r"row 4 \(sample_id 0\): duplicate sample_id"),
        (lambda t: t.iloc[:0], "no samples"),
    ],
)
def test_bad_table(dataset, mutate, needle):
    folder = dataset[0]
    _rewrite(folder, mutate)
    with pytest.raises(DataError, match=needle):
        read_synthetic(folder)


def test_png_of_another_size_is_rejected(dataset):
    folder = dataset[0]
    Image.fromarray(_images(1, size=9)[0]).save(folder / "images" / "000002.png")
    with pytest.raises(DataError, match=r"row 2 \(sample_id 2\).*is 9x9, the first image is 8x8"):
        read_synthetic(folder, use_cache=False)


def test_corrupt_png_is_rejected(dataset):
    folder = dataset[0]
    (folder / "images" / "000001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"row 1 \(sample_id 1\): unreadable image"):
        read_synthetic(folder, use_cache=False)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        read_synthetic(tmp_path / "nope")


def test_writer_rejects_inconsistent_inputs(tmp_path):
    with pytest.raises(DataError, match="6 images but c has shape"):
        write_synthetic(tmp_path / "x", _images(), [0, 1], np.zeros(6), model="m", checkpoint_step=0, seed=0)
    with pytest.raises(DataError, match="uint8"):
        write_synthetic(tmp_path / "x", _images().astype(float), np.zeros(6), np.zeros(6), model="m",
                        checkpoint_step=0, seed=0)

