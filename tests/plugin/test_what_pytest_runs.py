"""A bare ``pytest`` from a checkout runs the conformance suite only; the project's test command
(the README's, which .ci/run, tox and CI run) runs everything the project tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_test_command() -> str:
    text = ROOT.joinpath("README.md").read_text().split("## Quickstart", 1)[1]
    commands = re.findall(r"^(pytest -p no:cacheprovider [^\n]*)$", text, re.M)
    assert len(commands) == 1, commands
    return commands[0]


def test_ci_runs_the_readmes_test_command_over_every_test_directory():
    command = _readme_test_command()
    assert command in ROOT.joinpath(".ci", "run").read_text().splitlines()
    assert command.split()[-1] == "tests"


def _collected(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return {line.split("::")[0].split("/")[1] for line in out.stdout.splitlines()
            if line.startswith("tests/") and "::" in line}


def test_bare_pytest_collects_the_labs_and_the_test_command_everything():
    assert _collected() == {"labs"}
    project = _collected(*_readme_test_command().split()[5:])  # the paths after "-n 2"
    on_disk = {p.parent.name for p in ROOT.glob("tests/*/test_*.py")}
    assert project == on_disk and "labs" in project
