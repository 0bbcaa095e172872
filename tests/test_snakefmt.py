"""The workflow's Snakefiles are formatted: `snakefmt --check` (settings in pyproject.toml's
[tool.snakefmt]) and `snakemake --lint` find nothing in Snakefile and workflow/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_snakefmt_check_is_clean():
    if shutil.which("snakefmt") is None:
        pytest.skip("snakefmt is not installed (pip install -e '.[test]')")
    r = subprocess.run(["snakefmt", "--check", "--diff", "Snakefile", "workflow/"], cwd=ROOT, capture_output=True,
                       check=False, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_snakemake_lint_is_clean():
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", "Snakefile", "--lint"], cwd=ROOT, capture_output=True,
                       check=False, text=True, timeout=240)
    assert r.returncode == 0 and "Congratulations, your workflow is in a good condition!" in r.stdout + r.stderr, (
        r.stdout[-4000:] + r.stderr[-2000:])
