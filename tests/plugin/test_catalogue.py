"""The package's catalogue table equals the team's CATALOGUE.md; lab markers use its IDs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pytest_istiolab.report.catalogue import CATALOGUE, CHECK_ID, is_companion, lab_of

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "labs" / "CATALOGUE.md"


def test_table_has_the_120_catalogue_checks() -> None:
    assert len(CATALOGUE) == 120
    assert all(CHECK_ID.match(i) and not is_companion(i) for i in CATALOGUE)
    assert sorted({lab_of(i) for i in CATALOGUE}) == list(range(1, 10))


def test_table_equals_the_catalogue_document() -> None:
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} is not at hand in this checkout")
    ids = set(re.findall(r"\bL\d+(?:\.\d+)?-C\d{2}\b", SHARED.read_text()))
    assert ids == set(CATALOGUE)


def _marked_ids() -> set[str]:
    ids: set[str] = set()
    for path in (ROOT / "tests" / "labs").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "check"):
                ids |= {a.value for a in node.args
                        if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return ids


def test_lab_markers_name_catalogue_or_companion_ids() -> None:
    unknown = sorted(i for i in _marked_ids()
                     if not (i in CATALOGUE or (CHECK_ID.match(i) and is_companion(i))))
    assert not unknown, f"check markers name IDs neither catalogue nor companion: {unknown}"
