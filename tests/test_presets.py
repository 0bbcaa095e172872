"""Each preset gives every stage the same configuration through Snakemake and through the CLI.

Snakemake reads config/config.yaml and then the preset over it, fills the schema's defaults and
passes each rule's declared part (fairgen.common.config.STAGE_CONFIG) as --config-json; the CLI given
`--config PRESET` fills the same schema's defaults. A dry run prints every job's command; each
command's configuration must be exactly what the CLI builds for that stage from the preset alone.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fairgen import cli
from fairgen.common import config

ROOT = Path(__file__).resolve().parent.parent


def _dry_run_commands(preset: Path, workdir: Path) -> list[list[str]]:
    """The `fairgen ...` command of every job of `all` and `zoo` for ``preset``, as argument lists."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "1",
         "--dry-run", "--printshellcmds", "--configfile", str(preset), "--", "all", "zoo"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    commands = []
    for line in done.stdout.splitlines():
        if "fairgen " in line and "--config-json" in line:
            tokens = shlex.split(line[line.index("fairgen "):])
            commands.append(tokens[: tokens.index(">")] if ">" in tokens else tokens)
    return commands


def _option(tokens: list[str], name: str) -> str | None:
    return tokens[tokens.index(name) + 1] if name in tokens else None


@pytest.mark.parametrize("preset", ["config.yaml", "tiny.yaml", "gpu.yaml", "paper.yaml"])
def test_every_stage_gets_the_same_config_from_snakemake_and_the_cli(preset, tmp_path):
    path = ROOT / "config" / preset
    cli = config.load(path)  # what `fairgen STAGE --config PRESET` validates
    commands = _dry_run_commands(path, tmp_path)
    stages = {tokens[1] for tokens in commands}
    assert {"dataset", "crops", "train-gan", "generate", "train-classifier", "metrics-table", "compare",
            "quality", "audit", "zoo-data", "zoo-classifier", "zoo-train", "zoo-evaluate", "zoo-report"} <= stages
    for tokens in commands:
        stage, names = tokens[1], {"model": _option(tokens, "--model")}
        passed = json.loads(_option(tokens, "--config-json"))
        expected = config.stage_config(cli, stage, **names)
        # the rule passes exactly the stage's declared part, with every default filled in ...
        assert passed == expected, f"{preset}: {stage} {names}"
        # ... so the command sees the same values whether Snakemake or a user started it
        assert config.stage_config(config.load(json_text=json.dumps(passed)), stage, **names) == expected


def test_a_stage_sees_only_what_it_declares():
    cfg = config.validate({"gan": {"steps": 7}})
    view = config.stage_config(cfg, "train-gan")
    assert set(view) == {"seed", "device", "threads", "precision", "protected", "outcome", "gan"}
    assert view["gan"]["steps"] == 7 and "runs" not in view["gan"]
    zoo = config.stage_config(cfg, "zoo-train", model="dcgan")
    assert set(zoo["zoo"]) == {"dcgan", "log_every", "sample_every", "checkpoint_every"}
    assert set(config.STAGE_CONFIG) == set(cli.COMMANDS)  # every command declares what it reads
