"""Bad inputs through the ``fairgen`` CLI, as a user meets them.

Each case breaks one input of a working setup, runs one subcommand (``fairgen.cli.main``, the
console entry point's function) and expects exit code 2, an error line naming the culprit (file
and line, row or key), and none of the command's outputs, nor temporaries of them, left behind.
The module-level tests of each reader exist elsewhere; this is the user-facing table. Also: every
file kind with a format version (``fairgen.common.io.FORMAT_VERSIONS``, the GAN checkpoint included)
is refused clearly when written by another version.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from test_crops import make_celeba  # real JPEGs + the five annotation files, CelebA's layout
from test_fairness_gan import _write_crops  # a tiny crops array + index
from test_sources import serve_fixed_bytes  # a local "Google Drive" answering fixed bytes

from fairgen import cli
from fairgen.common import io
from fairgen.common.errors import FormatVersionError
from fairgen.data import celeba as C
from fairgen.data.synthetic_set import SAMPLES_FILE, write_synthetic
from fairgen.models import build
from fairgen.training import checkpoint as ckpt_mod


@dataclass
class Base:
    """Working inputs, built once; each case copies what it breaks."""

    celeba: Path       # CelebA root, 12 images
    crops: Path        # folder with crops.npy + index.parquet (32 px)
    synthetic: Path    # a synthetic set of GAN run fgan_dp (32 px)
    checkpoint: Path   # a tiny Fairness GAN checkpoint of run fgan_dp
    server: str        # base URL of a local "Google Drive" serving the wrong bytes


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    root = tmp_path_factory.mktemp("base")
    make_celeba(root / "celeba")
    _write_crops(root / "crops")
    rng = np.random.default_rng(0)
    write_synthetic(root / "synthetic", rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8), np.arange(16) % 2,
                    rng.random(16), model="fgan_dp", checkpoint_step=5, seed=0, progress=False)
    torch.manual_seed(0)
    gan = build("fairness_gan", resolution=32, z_dim=8, width=4, y_hidden=8, cy_hidden=8)
    ckpt_mod.save_checkpoint({"model": {"name": gan.name, "config": gan.config}, "step": 5, "train": {"extra": {"run": "fgan_dp"}},
                              "G": gan.G.state_dict(), "D": gan.D.state_dict()}, root / "checkpoint.pt")
    with serve_fixed_bytes(b"these are not CelebA's bytes") as url:
        yield Base(root / "celeba", root / "crops", root / "synthetic", root / "checkpoint.pt", url)


# ---------------------------------------------------------------------------------------------
# helpers: copy a working input, break one thing in it


def edit_line(path: Path, line: int, edit) -> None:
    """Replace line ``line`` (1-based) of a text file by ``edit(tokens) -> tokens``."""
    lines = path.read_text().split("\n")
    lines[line - 1] = " ".join(edit(lines[line - 1].split()))
    path.write_text("\n".join(lines))


def celeba_copy(base: Base, tmp: Path) -> Path:
    root = tmp / "celeba"
    shutil.copytree(base.celeba, root)
    return root


def dataset_cmd(base: Base, tmp: Path, break_it):
    root = celeba_copy(base, tmp)
    break_it(root)
    out = tmp / "out" / "dataset.json"
    return (["dataset", "--set", "dataset.source=celeba_local", "--set", f"dataset.celeba_root={root}",
             "--set", "dataset.check_md5=false", "--out", str(out)], [out])


def crops_cmd(base: Base, tmp: Path, break_it, *config_args: str):
    root = celeba_copy(base, tmp)
    break_it(root)
    manifest = tmp / "dataset.json"
    io.write_json({"root": str(root), "source": "celeba_local"}, manifest)
    out = tmp / "out"
    outputs = [out / "crops.npy", out / "index.parquet", out / "summary.json", out / "previews"]
    return (["crops", "--set", "crops.workers=1", "--set", "crops.resolution=32", *config_args,
             "--dataset", str(manifest), "--array", str(outputs[0]), "--index", str(outputs[1]),
             "--summary", str(outputs[2]), "--png-dir", str(outputs[3])], outputs)


def generate_cmd(base: Base, tmp: Path, make_checkpoint):
    ckpt = tmp / "ckpt.pt"
    make_checkpoint(ckpt)
    out = tmp / "out" / "synthetic"
    return (["generate", "--set", "device=cpu", "--set", "generate.n_samples=8", "--run", "fgan_dp",
             "--checkpoint", str(ckpt), "--out-dir", str(out)], [out])


def classifier_cmd(base: Base, tmp: Path, break_synthetic):
    synthetic = tmp / "synthetic"
    shutil.copytree(base.synthetic, synthetic)
    break_synthetic(synthetic)
    out = tmp / "out" / "fgan_dp"
    return (["train-classifier", "--set", "device=cpu", "--method", "fgan_dp", "--array", str(base.crops / "crops.npy"),
             "--index", str(base.crops / "index.parquet"), "--synthetic", str(synthetic), "--out-dir", str(out)],
            [out])


def train_gan_cmd(crops: Path, tmp: Path):
    out = tmp / "out" / "fgan_dp"
    return (["train-gan", "--set", "device=cpu", "--set", "gan.steps=2", "--run", "fgan_dp",
             "--array", str(crops / "crops.npy"), "--index", str(crops / "index.parquet"), "--out-dir", str(out)],
            [out, Path(f"{out}.state")])


# --- the breakages


def truncate_jpeg(root):
    f = root / C.IMAGE_DIR / "000002.jpg"
    f.write_bytes(f.read_bytes()[:-300])


def not_an_image(root):
    (root / C.IMAGE_DIR / "000002.jpg").write_text("<html><body>404 Not Found</body></html>\n")


def missing_image(root):
    (root / C.IMAGE_DIR / "000002.jpg").unlink()


def landmark_outside(root):  # line 4 = the row of 000002.jpg; token 7 = leftmouth_x
    edit_line(root / C.LANDMARKS_FILE, 4, lambda t: t[:7] + ["400"] + t[8:])


def wrong_count_line(root):
    edit_line(root / C.ATTR_FILE, 1, lambda t: ["13"])


def row_with_39_values(root):  # line 5 = the row of 000003.jpg
    edit_line(root / C.ATTR_FILE, 5, lambda t: t[:-1])


def duplicated_id(root):
    edit_line(root / C.ATTR_FILE, 6, lambda t: ["000003.jpg"] + t[1:])


def unknown_id_in_partition(root):
    edit_line(root / C.PARTITION_FILE, 3, lambda t: ["000999.jpg"] + t[1:])


def untouched(root):
    pass


def path_escaping_the_folder(folder):
    table, meta = io.read_parquet(folder / SAMPLES_FILE, "synthetic_samples")
    (folder.parent / "outside.png").write_bytes((folder / table.loc[1, "path"]).read_bytes())
    table.loc[1, "path"] = "../outside.png"
    io.write_parquet(table, folder / SAMPLES_FILE, "synthetic_samples", metadata=meta)


def config_file(tmp: Path, text: str) -> str:
    (tmp / "my.yaml").write_text(text)
    return str(tmp / "my.yaml")


def fewer_crops_than_rows(base, tmp):
    crops = tmp / "crops"
    shutil.copytree(base.crops, crops)
    io.save_npy(np.load(crops / "crops.npy")[:-1], crops / "crops.npy")
    return train_gan_cmd(crops, tmp)


def checkpoint_variant(change):
    def make(base):
        def write(path):
            ck = torch.load(base.checkpoint, weights_only=True)
            torch.save(change(ck), path)
        return write
    return make


def dcgan_checkpoint(base):
    def write(path):
        gan = build("dcgan64", z_dim=8, ngf=4, ndf=4, img_size=32)
        ckpt_mod.save_checkpoint({"model": {"name": gan.name, "config": gan.config}, "step": 3,
                                  "G": gan.G.state_dict(), "D": gan.D.state_dict()}, path)
    return write


def truncated_checkpoint(base):
    return lambda path: path.write_bytes(base.checkpoint.read_bytes()[:5000])


def download_cmd(base, tmp):
    root, out = tmp / "download", tmp / "out" / "dataset.json"
    return (["dataset", "--set", "dataset.source=celeba_download", "--set", f"dataset.download_root={root}",
             "--set", f"dataset.download_base_url={base.server}", "--out", str(out)], [out])


CASES = [
    # images (fairgen crops)
    pytest.param(lambda b, t: crops_cmd(b, t, truncate_jpeg),
                 r"img_align_celeba/000002\.jpg: corrupt or truncated image \(OSError: image file is truncated",
                 id="truncated-jpeg"),
    pytest.param(lambda b, t: crops_cmd(b, t, not_an_image), r"img_align_celeba/000002\.jpg: not an image file",
                 id="non-image-named-jpg"),
    pytest.param(lambda b, t: crops_cmd(b, t, missing_image), r"img_align_celeba/000002\.jpg: image file not found",
                 id="missing-image"),
    pytest.param(lambda b, t: crops_cmd(b, t, landmark_outside),
                 r"list_landmarks_align_celeba\.txt, row of 000002\.jpg: landmark outside the image: "
                 r"leftmouth at \(400, \d+\); the image is 178x218", id="landmark-outside-image"),
    # annotation files (fairgen dataset, a local CelebA copy)
    pytest.param(lambda b, t: dataset_cmd(b, t, wrong_count_line),
                 r"list_attr_celeba\.txt, line 1: count line says 13 images but the file has 12 data rows",
                 id="attr-wrong-count-line"),
    pytest.param(lambda b, t: dataset_cmd(b, t, row_with_39_values),
                 r"list_attr_celeba\.txt, line 5: expected 41 values \(image id \+ 40 attributes\), found 40",
                 id="attr-row-with-39-values"),
    pytest.param(lambda b, t: dataset_cmd(b, t, duplicated_id),
                 r"list_attr_celeba\.txt, line 6: image id 000003\.jpg is duplicated \(first on line 5\)",
                 id="duplicated-image-id"),
    pytest.param(lambda b, t: dataset_cmd(b, t, unknown_id_in_partition),
                 r"list_eval_partition\.txt, line 3: unknown image id 000999\.jpg \(not in list_attr_celeba\.txt\)",
                 id="unknown-id-in-partition"),
    pytest.param(lambda b, t: dataset_cmd(b, t, missing_image),
                 r"list_attr_celeba.txt, line 4: image 000002.jpg is listed but \S+/img_align_celeba/000002.jpg does not exist \(1 of 12 images missing \(000002\.jpg\)", id="dataset-missing-image"),
    pytest.param(download_cmd, r"img_align_celeba\.zip: MD5 of the download is [0-9a-f]{32}, expected "
                 r"00d2c5bc6d35e252742224ab0c1e8fcb \(bad download deleted\)", id="download-wrong-md5"),
    # configuration
    pytest.param(lambda b, t: crops_cmd(b, t, untouched, "--config", config_file(t, "gan:\n  stepz: 3\n")),
                 r"unknown config key\(s\) 'stepz' in 'gan'; allowed: .*steps", id="config-unknown-key"),
    pytest.param(lambda b, t: crops_cmd(b, t, untouched, "--set", "gan.steps=abc"),
                 r"config key 'gan\.steps': 'abc' is not of type 'integer'", id="config-wrong-type"),
    pytest.param(lambda b, t: crops_cmd(b, t, untouched, "--set", "crops.resolution=48"),
                 r"config key 'crops\.resolution': 48 is not one of \[32, 64\]", id="config-impossible-value"),
    pytest.param(lambda b, t: crops_cmd(b, t, untouched, "--config", config_file(t, "gan: [steps\n")),
                 r"my\.yaml: invalid YAML", id="config-invalid-yaml"),
    # checkpoints (fairgen generate)
    pytest.param(lambda b, t: generate_cmd(b, t, truncated_checkpoint(b)),
                 r"ckpt\.pt: not a readable checkpoint \(corrupted or truncated\?\)", id="checkpoint-corrupted"),
    pytest.param(lambda b, t: generate_cmd(b, t, dcgan_checkpoint(b)),
                 r"ckpt\.pt: model 'dcgan64' is not conditioned on the protected attribute c", id="checkpoint-other-model"),
    pytest.param(lambda b, t: generate_cmd(b, t, checkpoint_variant(
                     lambda ck: {**ck, "train": {"extra": {"run": "acgan"}}})(b)),
                 r"ckpt\.pt: checkpoint of GAN run 'acgan', not of run 'fgan_dp'", id="checkpoint-other-run"),
    pytest.param(lambda b, t: generate_cmd(b, t, checkpoint_variant(lambda ck: {"state_dict": ck["G"]})(b)),
                 r"ckpt\.pt: not a fairgen GAN checkpoint", id="checkpoint-not-fairgen"),
    # synthetic sets and crops arrays
    pytest.param(lambda b, t: classifier_cmd(b, t, path_escaping_the_folder),
                 r"samples\.parquet, row 1 \(sample_id 1\): image path '\.\./outside\.png' resolves to \S+outside\.png, "
                 r"outside the dataset folder", id="synthetic-path-escapes-folder"),
    pytest.param(fewer_crops_than_rows, r"crops\.npy has 95 images but \S+index\.parquet has 96 rows",
                 id="crops-array-shorter-than-index"),
]


def leftovers(outputs: list[Path]) -> list[str]:
    """Outputs that exist, and temporaries of atomic writes / downloads beside them."""
    found = [str(p) for p in outputs if p.exists()]
    for folder in {p.parent for p in outputs}:
        if folder.is_dir():
            found += [str(f) for f in folder.iterdir() if f.name.startswith(".")]
    return found


@pytest.mark.parametrize("setup, message", CASES)
def test_bad_input_exits_2_naming_the_culprit_and_leaves_nothing(base, tmp_path, capsys, setup, message):
    argv, outputs = setup(base, tmp_path)
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    prefix = f"fairgen {argv[0]}: error: "
    assert err.count(prefix) == 1, err
    error = err[err.index(prefix):]  # the error (a list of problems continues on further lines)
    assert re.search(message, error), error
    assert leftovers(outputs) == []
    if argv[0] == "dataset" and "celeba_download" in " ".join(argv):
        assert list((tmp_path / "download").iterdir()) == []  # the bad download is deleted


# ---------------------------------------------------------------------------------------------
# format versions of every versioned kind


def rewrite_parquet(path: Path, kind: str, version, monkeypatch) -> None:
    """Rewrite a fairgen Parquet file as if written with format ``version`` (None: no version)."""
    df, meta = io.read_parquet(path, kind)
    if version is None:
        table = pa.Table.from_pandas(df, preserve_index=False)
        pq.write_table(table.replace_schema_metadata({b"fairgen.kind": kind.encode()}), path)
        return
    with monkeypatch.context() as m:
        m.setitem(io.FORMAT_VERSIONS, kind, version)
        io.write_parquet(df, path, kind, metadata=meta)


def cli_reader(kind: str, base: Base, tmp: Path, monkeypatch, version):
    """A CLI command that reads a file of ``kind`` written with ``version``, or None if no
    subcommand reads that kind (it is then checked through fairgen.common.io.read_parquet only)."""
    tmp.mkdir()
    if kind == "crops_index":
        crops = tmp / "crops"
        shutil.copytree(base.crops, crops)
        rewrite_parquet(crops / "index.parquet", kind, version, monkeypatch)
        return train_gan_cmd(crops, tmp)
    if kind == "synthetic_samples":
        return classifier_cmd(base, tmp, lambda f: rewrite_parquet(f / SAMPLES_FILE, kind, version, monkeypatch))
    if kind == ckpt_mod.KIND:
        return generate_cmd(base, tmp, checkpoint_variant(lambda ck: {**ck, "format_version": version})(base))
    return None


@pytest.mark.parametrize("kind", sorted(io.FORMAT_VERSIONS))
@pytest.mark.parametrize("which", ["newer", "missing"])
def test_unknown_format_version_is_refused(base, tmp_path, monkeypatch, capsys, kind, which):
    current = io.FORMAT_VERSIONS[kind]
    version = current + 1 if which == "newer" else None
    shown = str(version) if version is not None else ("None" if kind == ckpt_mod.KIND else "(missing)")
    if kind == ckpt_mod.KIND:
        path = tmp_path / "v.pt"
        checkpoint_variant(lambda ck: {**ck, "format_version": version})(base)(path)
        with pytest.raises(FormatVersionError, match=rf"v\.pt: GAN checkpoint format version {shown} is not "
                                                     rf"supported \(this fairgen reads version {current}\)"):
            ckpt_mod.load_checkpoint(path)
    else:
        path = tmp_path / "v.parquet"
        with monkeypatch.context() as m:
            m.setitem(io.FORMAT_VERSIONS, kind, current)
            io.write_parquet(pd.DataFrame({"a": [1, 2]}), path, kind)
        rewrite_parquet(path, kind, version, monkeypatch)
        with pytest.raises(FormatVersionError, match=rf"v\.parquet: format version {re.escape(shown)} of '{kind}' "
                                                     rf"is not supported \(this fairgen reads version {current}\)"):
            io.read_parquet(path, kind)
    command = cli_reader(kind, base, tmp_path / "cli", monkeypatch, version)
    if command is not None:
        argv, outputs = command
        capsys.readouterr()
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"format version {shown}" in err and f"this fairgen reads version {current}" in err, err
        assert leftovers(outputs) == []
