"""``fairgen dataset`` (rule ``dataset``): get the face dataset from the configured source (the
embedded procedural CelebA, a CelebA download with checksums, or a local copy in a known layout),
validate it, apply the configured split and write the manifest the later stages read."""

from __future__ import annotations

import logging
from pathlib import Path

from fairgen.common.errors import ConfigError
from fairgen.common.io import write_json
from fairgen.data import celeba as C
from fairgen.data.sources import (
    apply_split,
    build_manifest,
    check_attribute_keys,
    ensure_synthetic,
    split_spec,
)

log = logging.getLogger(__name__)


def prepare(cfg: dict, out: str, progress: bool = True) -> int:
    """CLI target of ``fairgen dataset``: get the dataset, validate it, write the manifest at ``out``."""
    check_attribute_keys(cfg)
    ds = cfg["dataset"]
    source = ds["source"]
    if source == "synthetic":
        root, parameters = ensure_synthetic(cfg, progress)
    elif source == "celeba_download":
        root = Path(ds["download_root"])
        C.download_celeba(root, progress=progress, base_url=ds["download_base_url"])
        C.verify_celeba(root, check_md5=True)
        parameters = {"download_base_url": ds["download_base_url"], "md5_checked": True}
    elif source == "celeba_local":
        if ds["celeba_root"] is None:
            raise ConfigError("config key 'dataset.celeba_root' must name an existing CelebA folder "
                              "when dataset.source is 'celeba_local'")
        root = Path(ds["celeba_root"])
        layout = C.verify_celeba(root, check_md5=ds["check_md5"])
        parameters = {"md5_checked": bool(ds["check_md5"]) and layout == C.OFFICIAL,
                      "release_counts_checked": bool(ds["check_md5"]) and layout == C.KAGGLE}
    else:  # pragma: no cover (the schema's enum rejects this first)
        raise ConfigError(f"config key 'dataset.source': unknown source {source!r}")

    layouts = C.find_layouts(root)
    df = C.read_celeba(root)
    split = split_spec(cfg)
    df = apply_split(df, split)
    manifest = build_manifest(df, root, source, cfg["protected"], cfg["outcome"], parameters)
    manifest.update(layout=layouts[0], layouts_found=list(layouts), image_dir=str(C.find_image_dir(root).resolve()),
                    identity_available=bool(df["identity"].notna().all()), split=split)
    write_json(manifest, out)
    log.info("dataset manifest written to %s (%d images at %s)", out, manifest["n_images"], manifest["root"])
    return 0
