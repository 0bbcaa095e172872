import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fairgen.common import config
from fairgen.common.errors import ConfigError

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


def _leaf_tuples(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaf_tuples(v, prefix + (k,))
        else:
            yield prefix + (k,), v


def test_shipped_configs_validate_and_keep_every_value_they_set():
    import yaml

    for name in ("config.yaml", "tiny.yaml", "gpu.yaml", "paper.yaml"):
        path = ROOT / "config" / name
        cfg = config.load(path)
        written = list(_leaf_tuples(yaml.safe_load(path.read_text())))
        assert len(written) > 5, name
        for keys, value in written:  # validation fills defaults around them, never changes them
            got = cfg
            for k in keys:
                got = got[k]
            assert got == value, (name, ".".join(keys), got, value)
        assert cfg["gan"]["betas"] == [0.0, 0.9]  # and a default filled in each


PAPER_SETTINGS = {
    ("protected",): "Male", ("outcome",): "Attractive",
    ("dataset", "split"): "random", ("dataset", "random_split", "test_fraction"): 0.1,
    ("crops", "resolution"): 64,
    ("gan", "fair_penalty"): "cy_head", ("gan", "lambda_fair"): 1.0, ("gan", "lambda_cx"): 1.0,
    ("gan", "experimental", "lambda_yx"): 0.0, ("gan", "lambda_label"): 0.0, ("gan", "sx_given_c"): False,
    ("gan", "experimental", "sj_given_c"): False, ("gan", "experimental", "mbstd_group"): 0, ("gan", "experimental", "diffaugment"): [],
    ("gan", "experimental", "ema_decay"): 0.0, ("gan", "y_from_c"): False, ("gan", "experimental", "y_path"): "noise",
    ("gan", "y_soft"): 0.8, ("gan", "y_noise"): 0.01, ("gan", "n_dis"): 1,
    ("gan", "lr_g"): 0.0002, ("gan", "lr_d"): 0.0002, ("gan", "betas"): [0.0, 0.9], ("gan", "lr_decay"): "linear",
    ("gan", "runs"): ["fgan_dp", "fgan_eqopp"], ("generate", "experimental", "oversample"): 1, ("classifier", "threshold"): 0.5,
    ("classifier", "methods"): ["real", "reweighing", "fgan_dp", "fgan_eqopp"],
}


@pytest.mark.parametrize("base", [None, "config.yaml"])
def test_paper_preset_is_the_papers_model(base):
    """config/paper.yaml alone (the CLI) and merged over config/config.yaml (what Snakemake does with
    --configfile) both give the paper's settings: every key config.yaml changes is set back."""
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    if base:
        cfg = config.merge(yaml.safe_load((ROOT / "config" / base).read_text()), cfg)
    cfg = config.validate(cfg)
    for keys, want in PAPER_SETTINGS.items():
        got = cfg
        for k in keys:
            got = got[k]
        assert got == want, (keys, got)


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
