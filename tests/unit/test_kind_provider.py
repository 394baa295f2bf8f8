"""KindProvider driven through the `kind` and `docker` test doubles in tests/doubles."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pytest_istiolab.cluster import ClusterHandle
from pytest_istiolab.cluster.providers.kind import (
    KindProvider,
    KindTimeouts,
    handle_from_json,
    handle_to_json,
    read_handle,
    write_handle,
)
from pytest_istiolab.errors import ClusterError, UsageError

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


class Doubles:
    """PATH holding a chosen subset of the doubles (and python3 for their shebang)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin, self.log = root / "bin", root / "calls.jsonl"
        self.state = root / "kind-clusters.json"
        self.bin.mkdir()
        self._monkeypatch = monkeypatch
        monkeypatch.setenv("PATH", os.pathsep.join([str(self.bin),
                                                    str(Path(sys.executable).parent)]))
        monkeypatch.setenv("KIND_DOUBLE_LOG", str(self.log))
        monkeypatch.setenv("KIND_DOUBLE_STATE", str(self.state))
        for var in ("KIND_DOUBLE_FAIL", "KIND_DOUBLE_HANG", "DOCKER_DOUBLE_DOWN", "KUBECONFIG"):
            monkeypatch.delenv(var, raising=False)

    def install(self, *names: str) -> Doubles:
        for name in names:
            (self.bin / name).symlink_to(DOUBLES / name)
        return self

    def env(self, name: str, value: str) -> None:
        self._monkeypatch.setenv(name, value)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def kind_calls(self) -> list[list[str]]:
        return [call[1:] for call in self.calls() if call[0] == "kind"]

    def clusters(self) -> list[str]:
        return json.loads(self.state.read_text()) if self.state.exists() else []

    def add_cluster(self, name: str) -> None:
        self.state.write_text(json.dumps([*self.clusters(), name]))


@pytest.fixture
def doubles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Doubles:
    return Doubles(tmp_path, monkeypatch)


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., KindProvider]:
    def factory(**kw: object) -> KindProvider:
        return KindProvider(tmp_path / "work", **kw)  # type: ignore[arg-type]
    return factory


# ----------------------------------------------------------------------- preflight
def test_missing_kind_is_a_usage_error_saying_what_to_install(
        doubles: Doubles, make: Callable[..., KindProvider]) -> None:
    doubles.install("docker")
    with pytest.raises(UsageError) as err:
        make().start()
    assert "needs the `kind` CLI, which is not on PATH" in str(err.value)
    assert "go install sigs.k8s.io/kind" in str(err.value)
    assert doubles.calls() == []                       # nothing started


def test_missing_docker_is_a_usage_error_before_kind_runs(
        doubles: Doubles, make: Callable[..., KindProvider]) -> None:
    doubles.install("kind")
    with pytest.raises(UsageError, match="(?s)needs `docker`.*install Docker"):
        make().start()
    assert doubles.calls() == []


def test_docker_engine_down_is_a_usage_error_quoting_docker(
        doubles: Doubles, make: Callable[..., KindProvider]) -> None:
    doubles.install("kind", "docker")
    doubles.env("DOCKER_DOUBLE_DOWN", "1")
    with pytest.raises(UsageError, match="engine does not answer: Cannot connect to the Docker"):
        make().start()
    assert doubles.kind_calls() == []


# ----------------------------------------------------------------------- create / delete
def test_creates_a_uniquely_named_cluster_and_deletes_it_at_stop(
        doubles: Doubles, make: Callable[..., KindProvider], tmp_path: Path) -> None:
    doubles.install("kind", "docker")
    provider = make(image="kindest/node:v1.32.2")
    handle = provider.start()
    name = handle.extra["cluster_name"]
    assert name.startswith("istiolab-") and doubles.clusters() == [name]
    kubeconfig = tmp_path / "work" / "kubeconfig"
    assert handle == ClusterHandle(
        kubeconfig=kubeconfig, context=f"kind-{name}", provider="kind",
        description=f"kind cluster {name} (deleted at session end)", node_address=None,
        extra={"cluster_name": name, "created": "true", "image": "kindest/node:v1.32.2"})
    assert yaml.safe_load(kubeconfig.read_text())["current-context"] == f"kind-{name}"
    assert doubles.kind_calls()[-1] == [
        "create", "cluster", "--name", name, "--wait", "120s", "--kubeconfig", str(kubeconfig),
        "--image", "kindest/node:v1.32.2"]
    provider.stop()
    assert doubles.kind_calls()[-1] == ["delete", "cluster", "--name", name, "--kubeconfig",
                                        str(kubeconfig)]
    assert doubles.clusters() == []
    provider.stop()                                       # idempotent: no second delete
    assert sum(call[0] == "delete" for call in doubles.kind_calls()) == 1


def test_two_runs_get_different_names(doubles: Doubles, tmp_path: Path) -> None:
    doubles.install("kind", "docker")
    names = {KindProvider(tmp_path / f"w{i}").start().extra["cluster_name"] for i in range(2)}
    assert len(names) == 2 and sorted(doubles.clusters()) == sorted(names)


def test_keep_leaves_the_created_cluster(doubles: Doubles,
                                         make: Callable[..., KindProvider]) -> None:
    doubles.install("kind", "docker")
    provider = make(keep=True)
    handle = provider.start()
    assert "(kept after the session)" in handle.description
    provider.stop()
    assert doubles.clusters() == [handle.extra["cluster_name"]]
    assert not any(call[0] == "delete" for call in doubles.kind_calls())


def test_keep_decided_at_the_end_is_honoured(doubles: Doubles,
                                             make: Callable[..., KindProvider]) -> None:
    doubles.install("kind", "docker")
    provider = make()
    handle = provider.start()
    provider.keep = True                                  # e.g. --istio-keep=on-failure, failed
    provider.stop()
    assert doubles.clusters() == [handle.extra["cluster_name"]]


def test_named_cluster_that_does_not_exist_is_created_with_that_name(
        doubles: Doubles, make: Callable[..., KindProvider]) -> None:
    doubles.install("kind", "docker")
    handle = make(cluster_name="team-mesh").start()
    assert handle.context == "kind-team-mesh" and handle.extra["created"] == "true"
    assert doubles.clusters() == ["team-mesh"]


# ----------------------------------------------------------------------- reuse
def test_existing_named_cluster_is_reused_and_never_deleted(
        doubles: Doubles, make: Callable[..., KindProvider], tmp_path: Path) -> None:
    doubles.install("kind", "docker")
    doubles.add_cluster("dev")
    provider = make(cluster_name="dev")
    handle = provider.start()
    assert handle.context == "kind-dev" and handle.extra["created"] == "false"
    assert "reused; not deleted" in handle.description
    kubeconfig = tmp_path / "work" / "kubeconfig"
    assert yaml.safe_load(kubeconfig.read_text())["contexts"][0]["name"] == "kind-dev"
    assert kubeconfig.stat().st_mode & 0o077 == 0         # credentials: owner only
    provider.stop()
    assert doubles.clusters() == ["dev"]
    assert [call[:2] for call in doubles.kind_calls()] == [["get", "clusters"],
                                                           ["get", "kubeconfig"]]


# ----------------------------------------------------------------------- failures
def test_failed_create_is_a_cluster_error_with_kinds_stderr_and_cleans_up(
        doubles: Doubles, make: Callable[..., KindProvider]) -> None:
    doubles.install("kind", "docker")
    doubles.env("KIND_DOUBLE_FAIL", "create")
    with pytest.raises(ClusterError) as err:
        make(cluster_name="broken", image="kindest/node:v0.0.0").start()
    message = str(err.value)
    assert "`kind create cluster --name broken" in message and "failed (exit 1)" in message
    assert "pull access denied for kindest/node:v0.0.0" in message
    assert "fix: check Docker's disk space" in message
    assert doubles.kind_calls()[-1][:4] == ["delete", "cluster", "--name", "broken"]


def test_failed_delete_names_the_manual_fix(doubles: Doubles,
                                            make: Callable[..., KindProvider]) -> None:
    doubles.install("kind", "docker")
    provider = make(cluster_name="c1")
    provider.start()
    doubles.env("KIND_DOUBLE_FAIL", "delete")
    with pytest.raises(ClusterError, match="(?s)permission denied.*kind delete cluster --name c1"):
        provider.stop()


def test_failed_listing_is_a_cluster_error(doubles: Doubles,
                                           make: Callable[..., KindProvider]) -> None:
    doubles.install("kind", "docker")
    doubles.env("KIND_DOUBLE_FAIL", "get")
    with pytest.raises(ClusterError, match="`kind get clusters` failed"):
        make(cluster_name="x").start()


def test_hanging_kind_times_out(doubles: Doubles, make: Callable[..., KindProvider]) -> None:
    doubles.install("kind", "docker")
    doubles.env("KIND_DOUBLE_HANG", "create")
    timeouts = KindTimeouts(create=1.0)
    with pytest.raises(ClusterError, match="did not finish within 1 s"):
        make(timeouts=timeouts).start()


# ----------------------------------------------------------------------- handle sharing
def test_handles_round_trip_through_json_and_files(tmp_path: Path) -> None:
    handle = ClusterHandle(kubeconfig=tmp_path / "kc", context="kind-a", provider="kind",
                           description="d", istioctl=tmp_path / "istioctl",
                           node_address="172.18.0.2", extra={"cluster_name": "a"})
    assert handle_from_json(handle_to_json(handle)) == handle
    bare = ClusterHandle(kubeconfig=tmp_path / "kc", context=None, provider="existing",
                         description="d")
    assert handle_from_json(handle_to_json(bare)) == bare
    write_handle(tmp_path / "shared" / "handle.json", handle)
    assert read_handle(tmp_path / "shared" / "handle.json") == handle
    assert [p.name for p in (tmp_path / "shared").iterdir()] == ["handle.json"]


def test_unreadable_handle_is_a_cluster_error(tmp_path: Path) -> None:
    (tmp_path / "h.json").write_text("{not json")
    with pytest.raises(ClusterError, match="could not be read"):
        read_handle(tmp_path / "h.json")
