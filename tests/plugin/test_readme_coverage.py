"""The README's lab coverage table says exactly what the lab modules' check markers cover."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pytest_istiolab.report.catalogue import CATALOGUE

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


PROSE_BUILT = re.compile(r"\((\d+) of the\s+catalogue's (\d+) checks\)")
PROSE_TOTAL = re.compile(r"(\d+) in all\)")


def test_readme_prose_numbers_match_the_markers():
    """The intro's "(N of the catalogue's 120 checks)" is counted from the check markers and the
    catalogue table, never typed by hand: a lab that lands must update it, and this says so."""
    text = ROOT.joinpath("README.md").read_text()
    built = {i for ids in _marked().values() for i in ids} & set(CATALOGUE)
    claims = [(int(n), int(total)) for n, total in PROSE_BUILT.findall(text)]
    assert claims, "the README no longer says how many catalogue checks are built"
    for claim in claims:
        assert claim == (len(built), len(CATALOGUE)), (
            f"README says {claim[0]} of {claim[1]} catalogue checks are built; the check markers "
            f"of tests/labs name {len(built)} of the {len(CATALOGUE)}")
    assert [int(n) for n in PROSE_TOTAL.findall(text)] == [len(CATALOGUE)]
