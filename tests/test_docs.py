"""README's first two commands are the contract with a fresh machine; CI must run the second one."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md must start with a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_setup_demo_and_test_commands():
    demo, tests = readme_commands()[:2]
    assert "pgaudit check examples/" in demo and "pip install" in demo
    assert "pytest" in tests and "torch==2.13.0" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()
