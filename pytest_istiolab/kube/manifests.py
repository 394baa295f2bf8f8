"""Load Kubernetes manifests (multi-document YAML) from the repository's ``manifests/`` tree.

Where the tree is (first match wins):

1. ``$ISTIOLAB_MANIFESTS`` — an explicit directory (for a copy outside the source tree);
2. ``pytest_istiolab/manifests`` — manifests shipped inside the package (a wheel may carry them);
3. ``<repository>/manifests`` — the source checkout (editable installs, running from the repo).

Templating is deliberately minimal: ``${NAME}`` is replaced only when variables are passed, and
then every ``${NAME}`` in the file must have a value (a forgotten one is an error, never an empty
string). Nothing else (no Jinja, no Helm) — the files stay the manual's own, greppable YAML.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml

from pytest_istiolab.errors import ManifestError

ENV_MANIFESTS = "ISTIOLAB_MANIFESTS"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # pytest_istiolab/
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Doc = dict[str, Any]


def manifest_root() -> Path:
    """The directory manifests are loaded from (see the module docstring for the order)."""
    explicit = os.environ.get(ENV_MANIFESTS)
    if explicit:
        return Path(explicit).expanduser().resolve()
    packaged = _PACKAGE_DIR / "manifests"
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / "manifests"


MANIFEST_ROOT = manifest_root()


def resolve(relpath: str | Path, root: Path | None = None) -> Path:
    """The file ``relpath`` names (absolute, or relative to the manifest root); must exist."""
    base = root or manifest_root()
    path = Path(relpath)
    full = path if path.is_absolute() else base / path
    if full.is_file():
        return full
    raise ManifestError(f"manifest {relpath} not found (looked for {full})",
                        _missing_fix(relpath, base))


def load(relpath: str | Path, root: Path | None = None, **variables: str) -> list[Doc]:
    """The documents of one manifest file, empty documents skipped, ``kind: List`` expanded."""
    path = resolve(relpath, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"manifest {path} cannot be read: {err}",
                            "make the file readable UTF-8 text") from err
    return load_text(text, source=str(path), **variables)


def load_text(text: str, source: str = "<string>", **variables: str) -> list[Doc]:
    """The documents of a YAML text; ``source`` names it in errors."""
    if variables:
        text = substitute(text, variables, source)
    try:
        raw = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise _yaml_error(err, source) from err
    docs: list[Doc] = []
    for index, doc in enumerate(raw):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(
                f"{source}: document {index + 1} is a {type(doc).__name__}, not a mapping",
                f"make every document in {source} a Kubernetes object (apiVersion, kind, ...)")
        docs.extend(_expand_list(doc, source))
    return docs


def substitute(text: str, variables: dict[str, str], source: str = "<string>") -> str:
    """Replace every ``${NAME}`` with ``variables[NAME]``; a name without a value is an error."""
    missing = sorted({m.group(1) for m in _VAR_RE.finditer(text)} - set(variables))
    if missing:
        names = ", ".join(f"${{{name}}}" for name in missing)
        raise ManifestError(f"{source} uses {names} but no value was given",
                            f"pass {', '.join(f'{n}=...' for n in missing)} when loading it")
    return _VAR_RE.sub(lambda m: str(variables[m.group(1)]), text)


def dump(docs: list[Doc]) -> str:
    """Documents as one multi-document YAML text (for reports)."""
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def all_manifests(root: Path | None = None) -> list[str]:
    """Every ``*.yaml`` / ``*.yml`` under the root, as POSIX paths relative to it."""
    base = root or manifest_root()
    if not base.is_dir():
        return []
    found = [p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(p.relative_to(base).as_posix() for p in found)


# ------------------------------------------------------------------ helpers
def _expand_list(doc: Doc, source: str) -> list[Doc]:
    if doc.get("kind") != "List" or "items" not in doc:
        return [doc]
    items = doc.get("items") or []
    if not all(isinstance(item, dict) for item in items):
        raise ManifestError(f"{source}: a List has items that are not mappings",
                            f"make every item of the List in {source} a Kubernetes object")
    return list(items)


def _yaml_error(err: yaml.YAMLError, source: str) -> ManifestError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return ManifestError(f"{where}: invalid YAML: {detail}", f"correct the YAML at {where}")


def _missing_fix(relpath: str | Path, root: Path) -> str:
    wanted = Path(relpath).as_posix()
    known = all_manifests(root)
    if not known:
        return (f"no manifests found under {root}; set ${ENV_MANIFESTS} to the manifests "
                "directory or run from the repository")
    close = difflib.get_close_matches(wanted, known, n=5, cutoff=0.5)
    if not close:
        parent = Path(wanted).parent.as_posix()
        close = [k for k in known if k.startswith(parent + "/")][:10] if parent != "." else []
    if close:
        return "use one of: " + ", ".join(close)
    return f"see the files under {root}"
