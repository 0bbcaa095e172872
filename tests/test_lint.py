"""The package's shape is checked, not hoped for: import-linter's contracts (pyproject.toml's
[tool.importlinter]: the layers common <- data <- models <- training <- eval <- stages <- report
<- cli, and stage modules independent of each other) hold, and ruff's small rule set (pyflakes and
import order) finds nothing in fairgen/, tests/ and benchmarks/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["fairgen.cli", "fairgen.report", "fairgen.stages", "fairgen.eval", "fairgen.training", "fairgen.models",
          "fairgen.data", "fairgen.common"]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "lint-imports"
    cmd = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    env = {**os.environ, "PYTHONPATH": str(root)}  # this checkout's fairgen, not an installed one
    return subprocess.run(cmd + ["--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_layer_contract_names_every_layer_in_order():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert len(layers) == 1 and layers[0]["layers"] == LAYERS
    # every subpackage of fairgen is a layer (a new folder must be placed in the order)
    packages = {f"fairgen.{p.name}" for p in (ROOT / "fairgen").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(LAYERS) - {"fairgen.cli"}
    # and every stage module is in the independence contract
    independent = next(c for c in contracts if c["type"] == "independence")["modules"]
    stages = {f"fairgen.stages.{p.stem}" for p in (ROOT / "fairgen" / "stages").iterdir()
              if p.suffix == ".py" and p.stem != "__init__" or (p / "__init__.py").exists()}
    assert set(independent) == stages


def test_import_contracts_are_kept():
    r = _lint_imports(ROOT)
    assert r.returncode == 0 and "0 broken" in r.stdout, r.stdout[-4000:] + r.stderr[-2000:]


def test_a_climbing_import_breaks_the_contract(tmp_path):
    """The check can fail: the same contracts on a copy of the package in which common imports report."""
    shutil.copytree(ROOT / "fairgen", tmp_path / "fairgen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    io_py = tmp_path / "fairgen" / "common" / "io.py"
    io_py.write_text(io_py.read_text() + "\n\ndef _climb():\n    import fairgen.report.audit  # noqa: F401\n")
    r = _lint_imports(tmp_path)
    assert r.returncode != 0 and "fairgen.common is not allowed to import fairgen.report" in r.stdout, r.stdout[-3000:]


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "fairgen", "tests", "benchmarks"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
