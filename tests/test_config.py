import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fairgen import config
from fairgen.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_default_config_validates_and_fills_defaults():
    cfg = config.load(ROOT / "config" / "config.yaml")
    assert cfg["crops"]["resolution"] == 32  # set in config.yaml (laptop scale)
    assert cfg["gan"]["betas"] == [0.0, 0.9]  # filled from the schema
    assert cfg["dataset"]["synthetic"]["split_fractions"] == [0.8, 0.1, 0.1]


def test_empty_config_gets_all_defaults():
    cfg = config.validate({})
    assert cfg["dataset"]["source"] == "synthetic"
    assert cfg["dataset"]["synthetic"]["n_images"] == 20000


@pytest.mark.parametrize(
    "override, needle",
    [
        ("gan.stepz=3", "'stepz'"),
        ("bogus=1", "'bogus'"),
        ("gan.steps=abc", "gan.steps"),
        ("crops.resolution=48", "crops.resolution"),
        ("dataset.synthetic.p_protected=1.5", "dataset.synthetic.p_protected"),
        ("device=tpu", "device"),
    ],
)
def test_bad_config_names_the_key(override, needle):
    with pytest.raises(ConfigError) as e:
        config.load(ROOT / "config" / "config.yaml", [override])
    assert needle in str(e.value)


def test_json_and_overrides_merge():
    cfg = config.load(None, ["gan.steps=7"], json.dumps({"gan": {"batch_size": 8}, "seed": 3}))
    assert (cfg["gan"]["steps"], cfg["gan"]["batch_size"], cfg["seed"]) == (7, 8, 3)


def test_seed_for_is_stable_and_stage_specific():
    cfg = {"seed": 1}
    assert config.seed_for(cfg, "gan") == config.seed_for(cfg, "gan")
    assert config.seed_for(cfg, "gan") != config.seed_for(cfg, "crops")


def test_cli_reports_config_error_with_key(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "fairgen", "dataset", "--set", "crops.resolution=48", "--out", str(tmp_path / "m.json")],
        capture_output=True, text=True,
    )
    assert r.returncode == 2
    assert "crops.resolution" in r.stderr
    assert not (tmp_path / "m.json").exists()


def test_cli_help_for_every_subcommand():
    from fairgen.cli import COMMANDS

    for name in COMMANDS:
        r = subprocess.run([sys.executable, "-m", "fairgen", name, "--help"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "--config" in r.stdout


def test_config_readme_is_generated_from_the_schema():
    """config/README.md documents every schema key; regenerate with `fairgen config-readme --out config/README.md`."""
    assert (ROOT / "config" / "README.md").read_text() == config.schema_markdown()


def test_shipped_configs_validate():
    for name in ("config.yaml", "tiny.yaml", "gpu.yaml"):
        config.load(ROOT / "config" / name)


def _leaves(node, prefix=()):
    """(dotted path, value) of every leaf of a config mapping."""
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, prefix + (key,))
        else:
            yield ".".join(prefix + (key,)), value


def _get(cfg, dotted):
    """The value at a dotted key, or None where the schema gives it no default (a free mapping)."""
    for key in dotted.split("."):
        if key not in cfg:
            return None
        cfg = cfg[key]
    return cfg


def test_schema_defaults_equal_config_yaml():
    """One set of defaults: every key config/config.yaml sets equals the schema's default, so a
    stage given only the schema's defaults runs what config.yaml runs."""
    defaults = config.validate({})
    shipped = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    differ = {key: (value, _get(defaults, key)) for key, value in _leaves(shipped) if _get(defaults, key) != value}
    assert not differ, f"config.yaml value vs schema default: {differ}"


@pytest.mark.parametrize("preset", ["tiny.yaml", "gpu.yaml"])
def test_presets_state_only_what_they_change(preset):
    """A preset lists the keys it changes from the defaults, and no key it leaves as it is."""
    defaults = config.validate({})
    stated = yaml.safe_load((ROOT / "config" / preset).read_text())
    same = [key for key, value in _leaves(stated) if _get(defaults, key) == value]
    assert not same, f"{preset} restates defaults: {same}"
