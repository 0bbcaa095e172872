"""The README is a front door: small, with the two commands CI and users run, and working links."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_COMMAND = "pip install torch==2.14.1 torchvision==0.29.1 -e '.[test]' && python -m pytest"


def test_readme_is_under_10_kb_and_states_the_ci_command():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 10_000
    assert TEST_COMMAND in readme and TEST_COMMAND in (ROOT / ".ci" / "run").read_text()
    assert "pip install torch==2.14.1 torchvision==0.29.1 -e '.[test]' && snakemake --cores all" in readme


def test_relative_links_of_the_docs_exist():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"
