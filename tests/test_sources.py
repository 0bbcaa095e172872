"""``fairgen dataset``: the three sources, skipping an identical synthetic dataset, the manifest."""

import contextlib
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairgen.common import config
from fairgen.common.errors import ConfigError, DataError
from fairgen.data import celeba as C
from fairgen.data import procedural_celeba as S
from fairgen.stages import dataset as dataset_stage


def cfg_for(tmp_path, **dataset):
    syn = dataset.pop("synthetic", {})
    return config.validate({
        "dataset": {"synthetic_root": str(tmp_path / "syn"),
                    "synthetic": {"n_images": 40, "workers": 1, **syn}, **dataset},
    })


def test_cli_dataset_writes_manifest(tmp_path):
    out = tmp_path / "results" / "dataset.json"
    r = subprocess.run(
        [sys.executable, "-m", "fairgen", "dataset", "--set", "dataset.synthetic.n_images=40",
         "--set", f"dataset.synthetic_root={tmp_path / 'syn'}", "--set", "dataset.synthetic.workers=1",
         "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())
    assert m["source"] == "synthetic" and m["root"] == str((tmp_path / "syn").resolve())
    assert m["n_images"] == 40 and sum(m["splits"].values()) == 40
    assert (m["protected"], m["outcome"]) == ("Male", "Attractive")
    cfg = config.validate({})
    assert m["parameters"]["seed"] == config.seed_for(cfg, "synthetic")
    assert m["parameters"]["n_images"] == 40
    # Base rates agree with the annotation files.
    df = C.read_celeba(m["root"])
    for split in ("train", "valid", "test", "all"):
        part = df if split == "all" else df[df["split"] == split]
        for g in (0, 1):
            grp = part[part["Male"] == g]
            assert m["group_counts"][split][str(g)] == len(grp)
            expected = grp["Attractive"].mean() if len(grp) else None
            assert m["base_rates"][split][str(g)] == (pytest.approx(expected) if expected is not None else None)


def test_identical_synthetic_dataset_is_kept_and_changed_one_remade(tmp_path, monkeypatch):
    cfg = cfg_for(tmp_path)
    dataset_stage.prepare(cfg, str(tmp_path / "m1.json"), progress=False)
    attr = tmp_path / "syn" / C.ATTR_FILE
    stamp, original = attr.stat().st_mtime_ns, attr.read_bytes()

    def forbidden(*a, **k):
        raise AssertionError("should not remake an identical dataset")

    with monkeypatch.context() as mp:
        mp.setattr(S, "make_synthetic_celeba", forbidden)
        dataset_stage.prepare(cfg, str(tmp_path / "m2.json"), progress=False)
    assert attr.stat().st_mtime_ns == stamp
    m1, m2 = (json.loads((tmp_path / f"m{i}.json").read_text()) for i in (1, 2))
    assert m1 == m2

    # An incomplete copy is remade.
    (tmp_path / "syn" / C.IMAGE_DIR / "000007.jpg").unlink()
    dataset_stage.prepare(cfg, str(tmp_path / "m3.json"), progress=False)
    assert (tmp_path / "syn" / C.IMAGE_DIR / "000007.jpg").exists()

    # Different parameters (here the seed) give a different dataset.
    cfg2 = config.validate({**cfg, "seed": 5})
    dataset_stage.prepare(cfg2, str(tmp_path / "m4.json"), progress=False)
    m4 = json.loads((tmp_path / "m4.json").read_text())
    assert m4["parameters"]["seed"] == config.seed_for(cfg2, "synthetic") != m1["parameters"]["seed"]
    assert attr.read_bytes() != original and S.read_parameters(tmp_path / "syn") == m4["parameters"]


def test_other_protected_and_outcome_from_config(tmp_path):
    cfg = config.validate({**cfg_for(tmp_path, synthetic={"n_images": 60}), "protected": "Young", "outcome": "Smiling"})
    out = tmp_path / "m.json"
    dataset_stage.prepare(cfg, str(out), progress=False)
    m = json.loads(out.read_text())
    assert (m["protected"], m["outcome"]) == ("Young", "Smiling")
    assert m["parameters"]["protected"] == "Young"


@pytest.mark.parametrize("override, key", [({"protected": "Gender"}, "'protected'"),
                                           ({"outcome": "attractive"}, "'outcome'"),
                                           ({"outcome": "Male"}, "'protected' and 'outcome'")])
def test_attribute_keys_are_checked(tmp_path, override, key):
    cfg = config.validate({**cfg_for(tmp_path), **override})
    with pytest.raises(ConfigError) as e:
        dataset_stage.prepare(cfg, str(tmp_path / "m.json"), progress=False)
    assert key in str(e.value)
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "syn").exists()


def _tiny_celeba(root: Path, n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(1, n + 1)],
                       "split": ["train"] * (n - 4) + ["valid"] * 2 + ["test"] * 2})
    for a in C.ATTRIBUTE_NAMES:
        df[a] = rng.integers(0, 2, n).astype(np.int8)
    for c in (*C.LANDMARK_NAMES, "identity", *C.BBOX_COLUMNS):
        df[c] = rng.integers(1, 150, n).astype(np.int32)
    df = df[list(C.COLUMNS)]
    C.write_annotations(root, df)
    (root / C.IMAGE_DIR).mkdir()
    for i in df["image_id"]:
        (root / C.IMAGE_DIR / i).write_bytes(b"\xff\xd8 not really a jpeg")
    return df


def test_celeba_local(tmp_path):
    root = tmp_path / "celeba"
    root.mkdir()
    df = _tiny_celeba(root)
    out = tmp_path / "m.json"
    cfg = config.validate({"dataset": {"source": "celeba_local", "celeba_root": str(root), "check_md5": False}})
    dataset_stage.prepare(cfg, str(out), progress=False)
    m = json.loads(out.read_text())
    assert m["source"] == "celeba_local" and m["root"] == str(root.resolve())
    assert m["splits"] == {"train": 8, "valid": 2, "test": 2} and m["parameters"] == {"md5_checked": False, "release_counts_checked": False}
    assert (m["layout"], m["layouts_found"], m["split"]) == ("official", ["official"], {"method": "official"})
    assert m["image_dir"] == str((root / C.IMAGE_DIR).resolve()) and m["identity_available"]
    train = df[df["split"] == "train"]
    assert m["base_rates"]["train"]["1"] == pytest.approx(train.loc[train["Male"] == 1, "Attractive"].mean())
    # With MD5 checking (the default) these files are not the official release.
    with pytest.raises(DataError, match="list_attr_celeba.txt: MD5"):
        dataset_stage.prepare(config.validate({"dataset": {"source": "celeba_local", "celeba_root": str(root)}}),
                        str(tmp_path / "m2.json"), progress=False)
    # A broken annotation file fails here, naming file and line.
    (root / C.PARTITION_FILE).write_text((root / C.PARTITION_FILE).read_text().replace("000003.jpg 0", "000003.jpg 7"))
    with pytest.raises(DataError, match=r"list_eval_partition.txt, line 3"):
        dataset_stage.prepare(cfg, str(tmp_path / "m3.json"), progress=False)


def test_celeba_local_needs_a_root(tmp_path):
    cfg = config.validate({"dataset": {"source": "celeba_local"}})
    with pytest.raises(ConfigError, match="dataset.celeba_root"):
        dataset_stage.prepare(cfg, str(tmp_path / "m.json"), progress=False)


@contextlib.contextmanager
def serve_fixed_bytes(body: bytes):
    """A local HTTP server answering every GET with ``body``; yields its ``.../uc`` URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/uc"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_download_with_bad_md5_fails_naming_the_file(tmp_path):
    """celeba_download through the CLI against a local server whose bytes are not CelebA's."""
    with serve_fixed_bytes(b"not the file you are looking for") as url:
        root = tmp_path / "celeba"
        r = subprocess.run(
            [sys.executable, "-m", "fairgen", "dataset", "--set", "dataset.source=celeba_download",
             "--set", f"dataset.download_root={root}", "--set", f"dataset.download_base_url={url}",
             "--out", str(tmp_path / "m.json")],
            capture_output=True, text=True, timeout=120,
        )
    assert r.returncode == 2
    assert "img_align_celeba.zip" in r.stderr and "MD5" in r.stderr and "bad download deleted" in r.stderr
    assert not (tmp_path / "m.json").exists()
    assert not list(root.iterdir())  # nothing half-downloaded left behind
