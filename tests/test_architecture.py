"""One rule = one CLI subcommand = one stage module, as docs/architecture.md's table says: the
table, fairgen.cli.COMMANDS and workflow/rules/*.smk agree, and every stage module is a
subcommand's target with a docstring."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from fairgen.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
NO_RULE = {"relabel", "example-predictions", "config-readme"}  # commands without a rule (the doc says so)
STAGE_PACKAGES = ("fairgen.stages.", "fairgen.report.")


def _rule_commands() -> dict[str, set[str]]:
    """rule -> the fairgen subcommands its shell command runs."""
    rules = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for m in re.finditer(r"^(?:rule|checkpoint) (\w+):(.*?)(?=^(?:rule|checkpoint) |\Z)", text, re.M | re.S):
            shell = re.search(r"^\s+shell:\s*\n(.*?)(?=^\s{4}\w+:|\Z)", m.group(2), re.M | re.S)
            rules[m.group(1)] = set(re.findall(r"\bfairgen ([a-z][a-z-]+)", shell.group(1))) if shell else set()
    return rules


def _doc_table() -> list[tuple[str, str, str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Rules, commands and stage modules", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \| `fairgen ([a-z-]+)` \| `([\w.]+)` \|$", section, re.M)


def test_every_rule_runs_one_command_and_the_doc_lists_it():
    rules = {rule: cmds for rule, cmds in _rule_commands().items() if cmds}
    assert all(len(cmds) == 1 for cmds in rules.values()), rules
    table = _doc_table()
    assert {(rule, next(iter(cmds))) for rule, cmds in rules.items()} == {(r, c) for r, c, _ in table}
    for rule, command, module in table:
        assert COMMANDS[command][0].split(":")[0] == module, (rule, command)
    assert set(COMMANDS) == {c for _, c, _ in table} | NO_RULE


def test_one_stage_module_per_command():
    targets = [COMMANDS[c][0].split(":")[0] for c in COMMANDS if c != "config-readme"]
    assert all(t.startswith(STAGE_PACKAGES) for t in targets), targets
    stage_modules = {f"fairgen.stages.{p.relative_to(ROOT / 'fairgen' / 'stages').with_suffix('').as_posix()}"
                     .replace("/", ".") for p in (ROOT / "fairgen" / "stages").rglob("*.py")
                     if p.name != "__init__.py"}
    # each module under fairgen/stages is exactly one command's target
    stage_targets = [t for t in targets if t.startswith("fairgen.stages.")]
    assert sorted(stage_targets) == sorted(stage_modules)
    for command, (target, _, _) in COMMANDS.items():
        module, func = target.split(":")
        mod = importlib.import_module(module)
        assert callable(getattr(mod, func)), target
        assert mod.__doc__ and "TODO" not in mod.__doc__, module
