"""Lab modules use only the public helpers.

import-linter checks the library (``pyproject.toml``, ``lint-imports``); the lab modules are not a
package it can analyse, so this test reads their imports: package-level names of the library's
public packages and the foundation modules, never a submodule, never the embedded cluster (a lab
must run unchanged on a real cluster).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted((ROOT / "tests" / "labs").glob("test_*.py"))
PUBLIC = {
    "pytest_istiolab",  # ``from pytest_istiolab import traffic, waiting``
    "pytest_istiolab.kube", "pytest_istiolab.traffic", "pytest_istiolab.deploy",
    "pytest_istiolab.cluster", "pytest_istiolab.istioctl", "pytest_istiolab.security",
    "pytest_istiolab.observability",
    "pytest_istiolab.waiting", "pytest_istiolab.errors", "pytest_istiolab.timeouts",
    "pytest_istiolab.constants",
    "pytest_istiolab.report",  # ``reporting.register_applier``: what a failure report shows
}
TOP_LEVEL_NAMES = {"traffic", "waiting", "errors", "timeouts", "constants", "kube", "deploy"}


def library_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "pytest_istiolab":
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pytest_istiolab":
                    found.append((node.lineno, alias.name, []))
    return found


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_lab_modules_use_only_the_public_helpers(path: Path) -> None:
    bad = []
    for line, module, names in library_imports(path):
        if module not in PUBLIC:
            bad.append(f"line {line}: {module}")
        elif module == "pytest_istiolab" and not set(names) <= TOP_LEVEL_NAMES:
            bad.append(f"line {line}: from pytest_istiolab import {', '.join(names)}")
        elif module == "pytest_istiolab.report" and names != ["reporting"]:
            bad.append(f"line {line}: from pytest_istiolab.report import {', '.join(names)}")
    assert not bad, (f"{path.name} imports library internals (use the package-level names "
                     f"listed in {Path(__file__).name}): " + "; ".join(bad))


def test_the_checker_sees_a_bad_import(tmp_path: Path) -> None:
    module = tmp_path / "test_lab99_x.py"
    module.write_text("from pytest_istiolab.kube.client import Kube\n"
                      "from pytest_istiolab.embedded import EmbeddedCluster\n")
    assert [m for _, m, _ in library_imports(module)] == [
        "pytest_istiolab.kube.client", "pytest_istiolab.embedded"]

