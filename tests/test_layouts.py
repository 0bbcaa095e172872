"""CelebA as people have it: the official text layout and the Kaggle CSV layout, found automatically,
parsed by one parser into the same index; bad Kaggle input; both layouts at once; random splits."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_crops import make_celeba  # real JPEGs + the five annotation files, the official layout

from fairgen.common import config
from fairgen.common.errors import DataError
from fairgen.common.io import read_parquet
from fairgen.data import celeba as C
from fairgen.data import sources
from fairgen.stages import crops as crops_stage
from fairgen.stages import dataset as dataset_stage


def kaggle_copy(df: pd.DataFrame, official: Path, root: Path, newline: str = "\n") -> Path:
    """The Kaggle copy of an official-layout folder: the four CSVs and the images one folder deeper."""
    root.mkdir(parents=True)
    for name, text in C.format_kaggle_annotations(df).items():
        (root / name).write_bytes(text.replace("\n", newline).encode())
    shutil.copytree(official / C.IMAGE_DIR, root / C.KAGGLE_IMAGE_DIR)
    return root


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """(frame, official root, Kaggle root) made from the same 12 images."""
    base = tmp_path_factory.mktemp("layouts")
    df = make_celeba(base / "official", n=12)
    return df, base / "official", kaggle_copy(df, base / "official", base / "kaggle")


def local_cfg(root: Path, **dataset) -> dict:
    return config.validate({"dataset": {"source": "celeba_local", "celeba_root": str(root), "check_md5": False,
                                        **dataset},
                            "crops": {"workers": 1, "resolution": 32, "export_png": 0}})


def test_kaggle_files_look_like_the_kaggle_copy(layouts):
    _, _, kaggle = layouts
    attr = (kaggle / "list_attr_celeba.csv").read_text().splitlines()
    assert attr[0].startswith("image_id,5_o_Clock_Shadow,Arched_Eyebrows,") and attr[0].endswith(",Young")
    assert set(attr[1].split(",")[1:]) <= {"1", "-1"} and attr[1].startswith("000001.jpg,")
    assert (kaggle / "list_eval_partition.csv").read_text().splitlines()[:2] == ["image_id,partition", "000001.jpg,0"]
    assert (kaggle / "list_landmarks_align_celeba.csv").read_text().startswith(
        "image_id,lefteye_x,lefteye_y,righteye_x,righteye_y,nose_x,nose_y,leftmouth_x,leftmouth_y,rightmouth_x,rightmouth_y\n")
    assert (kaggle / "list_bbox_celeba.csv").read_text().startswith("image_id,x_1,y_1,width,height\n")
    assert not (kaggle / C.IDENTITY_FILE).exists() and (kaggle / "img_align_celeba/img_align_celeba/000012.jpg").is_file()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_both_layouts_parse_to_the_same_frame(layouts, tmp_path, newline):
    df, official, kaggle = layouts
    if newline != "\n":
        kaggle = kaggle_copy(df, official, tmp_path / "k", newline)
    a, b = C.read_celeba(official), C.read_celeba(kaggle)
    assert C.find_layouts(official) == ("official",) and C.find_layouts(kaggle) == ("kaggle",)
    assert C.find_image_dir(kaggle) == kaggle / "img_align_celeba" / "img_align_celeba"
    assert b["identity"].isna().all() and a["identity"].tolist() == df["identity"].tolist()
    pd.testing.assert_frame_equal(a.drop(columns="identity"), b.drop(columns="identity"))


def test_both_layouts_give_identical_crops_and_indexes(layouts, tmp_path):
    """`fairgen dataset` + `fairgen crops` on each layout: the same crops, the same index (identity aside)."""
    _, official, kaggle = layouts
    out = {}
    for name, root in (("official", official), ("kaggle", kaggle)):
        d = tmp_path / name
        cfg = local_cfg(root)
        dataset_stage.prepare(cfg, str(d / "dataset.json"), progress=False)
        crops_stage.run(cfg, str(d / "dataset.json"), str(d / "crops.npy"), str(d / "index.parquet"),
                  str(d / "summary.json"), progress=False)
        m = json.loads((d / "dataset.json").read_text())
        out[name] = (m, np.load(d / "crops.npy"), read_parquet(d / "index.parquet", "crops_index")[0])
    (mo, xo, io_), (mk, xk, ik) = out["official"], out["kaggle"]
    assert (mo["layout"], mk["layout"]) == ("official", "kaggle")
    assert mk["image_dir"] == str((kaggle / "img_align_celeba" / "img_align_celeba").resolve())
    assert mo["identity_available"] and not mk["identity_available"]
    assert mo["splits"] == mk["splits"] and mo["base_rates"] == mk["base_rates"]
    assert xo.shape == (12, 32, 32, 3) and np.array_equal(xo, xk)
    assert ik["identity"].isna().all() and not io_["identity"].isna().any()
    pd.testing.assert_frame_equal(io_.drop(columns="identity"), ik.drop(columns="identity"))


# ------------------------------------------------------------------ bad input: file and row named, nothing written


def _edit(path: Path, line: int, fn) -> None:
    lines = path.read_text().split("\n")
    lines[line - 1] = fn(lines[line - 1])
    path.write_text("\n".join(lines))


def _drop_column(name: str, column: str):
    def edit(root: Path) -> None:
        p = root / name
        rows = [r.split(",") for r in p.read_text().splitlines()]
        k = rows[0].index(column)
        p.write_text("".join(",".join(r[:k] + r[k + 1:]) + "\n" for r in rows))
    return edit


def _set_value(name: str, line: int, column: int, value: str):
    def edit(root: Path) -> None:
        _edit(root / name, line, lambda r: ",".join(value if i == column else v for i, v in enumerate(r.split(","))))
    return edit


def _duplicate_id(root: Path) -> None:
    _edit(root / "list_attr_celeba.csv", 6, lambda r: "000003.jpg" + r[len("000005.jpg"):])


def _missing_image(root: Path) -> None:
    (root / C.KAGGLE_IMAGE_DIR / "000004.jpg").unlink()


def _official_differs(root: Path) -> None:
    """The official text files beside the CSVs, with one attribute changed in the text file."""
    df = C.read_celeba(root)
    df.loc[df["image_id"] == "000007.jpg", "Smiling"] ^= 1
    C.write_annotations(root, df.assign(identity=1))


def _official_has_more(root: Path) -> None:
    """The official text files beside the CSVs, listing one image (000012.jpg) the CSVs do not."""
    C.write_annotations(root, C.read_celeba(root).assign(identity=1))
    for name in C.KAGGLE_FILES.values():
        (root / name).write_text("".join(line + "\n" for line in (root / name).read_text().splitlines()[:-1]))


BAD_KAGGLE = [
    (_drop_column("list_attr_celeba.csv", "Smiling"),
     r"list_attr_celeba.csv, line 1: header does not match CelebA's \(missing column 'Smiling'\)"),
    (_drop_column("list_landmarks_align_celeba.csv", "nose_x"),
     r"list_landmarks_align_celeba.csv, line 1: header does not match CelebA's \(missing column 'nose_x'\)"),
    (_set_value("list_attr_celeba.csv", 3, 5, "0"),
     r"list_attr_celeba.csv, line 3: attribute 'Bald' of 000002.jpg is 0, expected -1 or 1"),
    (_set_value("list_attr_celeba.csv", 4, 1, "yes"),
     r"list_attr_celeba.csv, line 4: attribute '5_o_Clock_Shadow' of 000003.jpg is 'yes', expected -1 or 1"),
    (_duplicate_id, r"list_attr_celeba.csv, line 6: image id 000003.jpg is duplicated \(first on line 4\)"),
    (_set_value("list_eval_partition.csv", 4, 1, "3"),
     r"list_eval_partition.csv, line 4: split code of 000003.jpg is 3, expected 0, 1 or 2"),
    (_set_value("list_eval_partition.csv", 2, 1, ""), r"list_eval_partition.csv, line 2: split code of 000001.jpg is ''"),
    (_missing_image, r"list_attr_celeba.csv, line 5: image 000004.jpg is listed but \S+/img_align_celeba/"
                     r"img_align_celeba/000004.jpg does not exist \(1 of 12 images missing"),
    (_official_differs, r"list_attr_celeba.csv, line 8: Smiling of 000007.jpg is \d but list_attr_celeba.txt, "
                        r"line 9 says \d \(both the official files and the Kaggle CSVs are in \S+ and they differ"),
    (_official_has_more, r"list_attr_celeba.txt, line 14: image 000012.jpg is not in list_attr_celeba.csv"),
]


@pytest.mark.parametrize("break_it, pattern", BAD_KAGGLE, ids=[p[:40] for _, p in BAD_KAGGLE])
def test_bad_kaggle_copy_names_file_and_row_and_writes_nothing(layouts, tmp_path, break_it, pattern):
    df, official, _ = layouts
    root = kaggle_copy(df, official, tmp_path / "kaggle")
    break_it(root)
    out = tmp_path / "out" / "dataset.json"
    with pytest.raises(DataError, match=pattern):
        dataset_stage.prepare(local_cfg(root), str(out), progress=False)
    assert not (tmp_path / "out").exists()


def test_both_layouts_with_the_same_contents_are_accepted(layouts, tmp_path):
    df, official, _ = layouts
    root = kaggle_copy(df, official, tmp_path / "kaggle")
    C.write_annotations(root, df)  # the official files too, same rows (with identities)
    dataset_stage.prepare(local_cfg(root), str(tmp_path / "m.json"), progress=False)
    m = json.loads((tmp_path / "m.json").read_text())
    assert (m["layout"], m["layouts_found"], m["identity_available"]) == ("official", ["official", "kaggle"], True)


def test_kaggle_copy_is_checked_against_the_release_counts(layouts, tmp_path):
    """check_md5 (the default): MD5s for the official files; the Kaggle CSVs must have the release's counts."""
    _, _, kaggle = layouts
    with pytest.raises(DataError, match=r"list_eval_partition.csv: 12 images \(train 6, valid 3, test 3\), the "
                                        r"release has 202,599 \(train 162,770, valid 19,867, test 19,962\)"):
        dataset_stage.prepare(local_cfg(kaggle, check_md5=True), str(tmp_path / "m.json"), progress=False)
    assert not (tmp_path / "m.json").exists()


# ------------------------------------------------------------------ splits


def test_random_split_is_seeded_recorded_and_used_by_crops(layouts, tmp_path):
    _, _, kaggle = layouts
    cfg = local_cfg(kaggle, split="random", random_split={"test_fraction": 0.25, "valid_fraction": 0.2})
    dataset_stage.prepare(cfg, str(tmp_path / "m.json"), progress=False)
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["split"] == {"method": "random", "test_fraction": 0.25, "valid_fraction": 0.2,
                          "seed": config.seed_for(cfg, "split")}
    assert m["splits"] == {"test": 3, "valid": 2, "train": 7}  # 12 * 0.25; round(9 * 0.2)
    crops_stage.run(cfg, str(tmp_path / "m.json"), str(tmp_path / "c.npy"), str(tmp_path / "i.parquet"),
              str(tmp_path / "s.json"), progress=False)
    index = read_parquet(tmp_path / "i.parquet", "crops_index")[0]
    df, _ = sources.load_index(m)
    assert index["split"].tolist() == df["split"].tolist()
    assert index["split"].tolist() != C.read_celeba(kaggle)["split"].tolist()  # not the official partition
    # The same seed gives the same split; another seed another one.
    same = sources.apply_split(C.read_celeba(kaggle), m["split"])
    other = sources.apply_split(C.read_celeba(kaggle), {**m["split"], "seed": m["split"]["seed"] + 1})
    assert same["split"].tolist() == df["split"].tolist() != other["split"].tolist()


def test_random_split_sizes_at_celeba_scale():
    df = pd.DataFrame({"image_id": [f"{i:06d}.jpg" for i in range(1, C.N_IMAGES + 1)], "split": "train"})
    out = sources.apply_split(df, {"method": "random", "test_fraction": 0.1, "valid_fraction": 0.1, "seed": 3})
    counts = out["split"].value_counts().to_dict()
    assert counts == {"train": 164_105, "valid": 18_234, "test": 20_260}  # 90/10, valid = 10% of the 90
