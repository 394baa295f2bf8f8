"""The README's lab coverage table says exactly what the lab modules' check markers cover."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RANGE = re.compile(r"(L[\d.]+)-C(\d+)\.\.C(\d+)|(L[\d.]+-C\d+)")


def _expand(text: str) -> set[str]:
    ids = set()
    for m in RANGE.finditer(text):
        if m.group(4):
            ids.add(m.group(4))
        else:
            ids.update(f"{m.group(1)}-C{n:02d}" for n in range(int(m.group(2)),
                                                              int(m.group(3)) + 1))
    return ids


def _readme_covered() -> dict[str, set[str]]:
    rows = {}
    table = ROOT.joinpath("README.md").read_text().split("## Lab coverage", 1)[1]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0][:1].isdigit():
            rows[cells[0].split()[0]] = _expand(cells[2])
    return rows


def _marked() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests" / "labs").glob("test_lab*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "check":
                for arg in node.args:
                    # companion checks (``L7-X01``) go beyond the catalogue: not in the table
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                            and "-C" in arg.value:
                        lab = arg.value[1:].split("-")[0].split(".")[0]
                        found.setdefault(lab, set()).add(arg.value)
    return found


def test_readme_table_matches_the_check_markers():
    readme, marked = _readme_covered(), _marked()
    assert set(readme) == {str(n) for n in range(1, 10)}
    for lab, ids in readme.items():
        assert ids == marked.get(lab, set()), f"lab {lab}: README {sorted(ids)} vs tests " \
                                              f"{sorted(marked.get(lab, set()))}"


def test_expansion_of_ranges():
    assert _expand("L3.1-C01..C03, L1-C07") == {"L3.1-C01", "L3.1-C02", "L3.1-C03", "L1-C07"}
