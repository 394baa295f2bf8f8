"""manifests: multi-document loading, substitution, and errors that point at the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_istiolab.errors import ManifestError
from pytest_istiolab.kube import manifests

TWO_DOCS = """\
apiVersion: v1
kind: Service
metadata:
  name: a
---
---
# only a comment
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: b
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "lab03-routing").mkdir()
    (tmp_path / "lab03-routing" / "virtual-service-all-v1.yaml").write_text(TWO_DOCS)
    (tmp_path / "lab03-routing" / "virtual-service-reviews-50-v3.yaml").write_text(TWO_DOCS)
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "sleep.yaml").write_text("kind: ServiceAccount\n")
    return tmp_path


def test_load_text_skips_empty_documents() -> None:
    docs = manifests.load_text(TWO_DOCS)
    assert [d["metadata"]["name"] for d in docs] == ["a", "b"]


def test_load_text_expands_lists() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n"
    assert [d["kind"] for d in manifests.load_text(text)] == ["A", "B"]


def test_load_text_refuses_non_mapping_documents() -> None:
    with pytest.raises(ManifestError, match="document 2 is a list"):
        manifests.load_text("kind: A\n---\n- 1\n- 2\n", source="x.yaml")


def test_yaml_error_names_file_line_column_and_fix() -> None:
    bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n"
    with pytest.raises(ManifestError) as info:
        manifests.load_text(bad, source="lab.yaml")
    message = str(info.value)
    assert message.startswith("lab.yaml:5:1: invalid YAML:")
    assert "fix: correct the YAML at lab.yaml:5:1" in message


def test_tab_indentation_error_points_at_the_tab() -> None:
    with pytest.raises(ManifestError, match=r"^t.yaml:2:1: invalid YAML"):
        manifests.load_text("a: 1\n\tb: 2\n", source="t.yaml")


def test_substitution_only_with_variables() -> None:
    text = "metadata:\n  namespace: ${NS}\n"
    assert manifests.load_text(text)[0]["metadata"]["namespace"] == "${NS}"
    assert manifests.load_text(text, NS="lab3")[0]["metadata"]["namespace"] == "lab3"


def test_substitution_with_a_missing_variable_is_an_error() -> None:
    with pytest.raises(ManifestError) as info:
        manifests.load_text("a: ${NS}\nb: ${HOST}\n", source="x.yaml", NS="lab3")
    assert "x.yaml uses ${HOST} but no value was given" in str(info.value)
    assert "pass HOST=..." in str(info.value)


def test_load_from_root(root: Path) -> None:
    docs = manifests.load("lab03-routing/virtual-service-all-v1.yaml", root=root)
    assert len(docs) == 2
    assert manifests.load(Path("samples/sleep.yaml"), root=root) == [{"kind": "ServiceAccount"}]


def test_load_absolute_path(root: Path) -> None:
    assert manifests.load(root / "samples" / "sleep.yaml") == [{"kind": "ServiceAccount"}]


def test_missing_file_suggests_close_names(root: Path) -> None:
    with pytest.raises(ManifestError) as info:
        manifests.load("lab03-routing/virtual-service-all-v2.yaml", root=root)
    message = str(info.value)
    assert "manifest lab03-routing/virtual-service-all-v2.yaml not found" in message
    assert "use one of: lab03-routing/virtual-service-all-v1.yaml" in message


def test_missing_file_in_empty_root(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no manifests found under"):
        manifests.load("x.yaml", root=tmp_path)


def test_yaml_error_in_a_file_names_the_file(root: Path) -> None:
    bad = root / "samples" / "bad.yaml"
    bad.write_text("kind: A\nspec: {a: 1\n")
    with pytest.raises(ManifestError, match=rf"^{bad}:3:1: invalid YAML"):
        manifests.load("samples/bad.yaml", root=root)


def test_root_from_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(manifests.ENV_MANIFESTS, str(root))
    assert manifests.manifest_root() == root.resolve()
    assert manifests.load("samples/sleep.yaml") == [{"kind": "ServiceAccount"}]


def test_default_root_is_the_repository_manifests_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(manifests.ENV_MANIFESTS, raising=False)
    repo = Path(manifests.__file__).resolve().parents[2]  # pytest_istiolab/kube/manifests.py
    assert manifests.manifest_root() == repo / "manifests"


def test_all_manifests_and_dump(root: Path) -> None:
    assert "samples/sleep.yaml" in manifests.all_manifests(root)
    assert manifests.load_text(manifests.dump(manifests.load_text(TWO_DOCS))) == \
        manifests.load_text(TWO_DOCS)
