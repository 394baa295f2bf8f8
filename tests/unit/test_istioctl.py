"""istioctl: locating the executable, running it with the run's kubeconfig, parsing versions.

A small shell script stands in for istioctl: it prints its arguments and stdin, and exits with
the code in $FAKE_EXIT.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

import pytest_istiolab
from pytest_istiolab.errors import IstioctlError
from pytest_istiolab.istioctl import Istioctl, IstioVersion, parse_version, resolve_istioctl
from pytest_istiolab.timeouts import Timeouts

FAKE = """#!/bin/sh
for a in "$@"; do echo "arg:$a"; done
if [ "$1" = "--kubeconfig=/k/config" ] && [ "$3" = "version" ]; then
  echo "client version: 1.26.0"
  echo "control plane version: 1.26.0"
  echo "data plane version: 1.26.0 (2 proxies)"
fi
if [ -n "$FAKE_STDIN" ]; then read line; echo "stdin:$line"; fi
if [ -n "$FAKE_HANG" ]; then sleep 30; fi
echo "to stderr" >&2
exit ${FAKE_EXIT:-0}
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return _executable(tmp_path / "istioctl", FAKE)


@pytest.fixture
def ctl(fake: Path) -> Istioctl:
    return Istioctl(fake, Path("/k/config"), "kind-lab", Timeouts())


def _args(stdout: str) -> list[str]:
    return [line[4:] for line in stdout.splitlines() if line.startswith("arg:")]


def test_run_adds_kubeconfig_and_context_before_the_subcommand(ctl: Istioctl) -> None:
    result = ctl.run(["proxy-config", "routes", "deploy/x"])
    assert _args(result.stdout) == ["--kubeconfig=/k/config", "--context=kind-lab",
                                    "proxy-config", "routes", "deploy/x"]
    assert result.stderr == "to stderr\n"


def test_run_without_kubeconfig_or_context_adds_nothing(fake: Path) -> None:
    assert _args(Istioctl(fake).run(["version"]).stdout) == ["version"]


def test_run_feeds_input(ctl: Istioctl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_STDIN", "1")
    assert "stdin:N" in ctl.run(["install"], input="N\n").stdout


def test_non_zero_exit_raises_with_command_line_and_output(ctl: Istioctl,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_EXIT", "3")
    with pytest.raises(IstioctlError) as info:
        ctl.run(["analyze"])
    message = str(info.value)
    assert f"{ctl.path} --kubeconfig=/k/config --context=kind-lab analyze exited with code 3" \
        in message
    assert "  arg:analyze" in message and "  to stderr" in message
    assert "fix: " in message


def test_non_zero_exit_without_check_returns(ctl: Istioctl,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_EXIT", "1")
    assert ctl.run(["install"], check=False).returncode == 1


def test_every_command_is_recorded(ctl: Istioctl) -> None:
    seen: list[tuple[str, str]] = []
    ctl.on_command = lambda description, output: seen.append((description, output))
    ctl.run(["x", "precheck"])
    [(description, output)] = seen
    assert description.startswith("$ ") and description.endswith("x precheck")
    assert "arg:precheck" in output and "to stderr" in output


def test_timeout_kills_the_whole_process_group(ctl: Istioctl,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_HANG", "1")
    started = time.monotonic()
    with pytest.raises(IstioctlError, match=r"did not finish within 0.3 s"):
        ctl.run(["install"], timeout=0.3)
    # the group's `sleep 30` was killed too: had it been left, reading the pipes would wait
    # for it (a relation with a wide margin, not a speed goal)
    assert time.monotonic() - started < 15


def test_unstartable_executable(tmp_path: Path) -> None:
    bad = _executable(tmp_path / "istioctl", "not a script")
    bad.write_bytes(b"\x7fELF garbage")
    with pytest.raises(IstioctlError, match="could not be started"):
        Istioctl(bad).run(["version"])


def test_install_uninstall_precheck_command_lines(ctl: Istioctl) -> None:
    out = ctl.install("demo", {"meshConfig.accessLogEncoding": "JSON"}).stdout
    assert _args(out)[2:] == ["install", "--set", "profile=demo",
                              "--set", "meshConfig.accessLogEncoding=JSON", "-y"]
    assert _args(ctl.uninstall().stdout)[2:] == ["uninstall", "--purge", "-y"]
    assert _args(ctl.precheck().stdout)[2:] == ["x", "precheck"]


def test_version_runs_and_parses(ctl: Istioctl) -> None:
    assert ctl.version() == IstioVersion("1.26.0", "1.26.0", "1.26.0", 2)


# ------------------------------------------------------------------ parse_version


def test_parse_version_manual_output() -> None:
    text = "client version: 1.26.0\ncontrol plane version: 1.26.0\n" \
           "data plane version: 1.26.0 (2 proxies)\n"
    assert parse_version(text) == IstioVersion("1.26.0", "1.26.0", "1.26.0", 2)


def test_parse_version_one_proxy_and_mixed_data_plane() -> None:
    assert parse_version("client version: 1.26.0\ncontrol plane version: 1.26.0\n"
                         "data plane version: 1.26.0 (1 proxy)\n").proxies == 1
    mixed = parse_version("client version: 1.26.0\ncontrol plane version: 1.26.0\n"
                          "data plane version: 1.26.0 (3 proxies), 1.25.2 (2 proxies)\n")
    assert (mixed.data_plane, mixed.proxies) == ("1.25.2, 1.26.0", 5)


def test_parse_version_without_a_mesh() -> None:
    text = "Istio is not present in the cluster: no running Istio pods in namespace " \
           "\"istio-system\"\nclient version: 1.26.0\n"
    assert parse_version(text) == IstioVersion("1.26.0", None, None, None)


def test_parse_version_short_and_garbage() -> None:
    assert parse_version("1.26.0\n") == IstioVersion("1.26.0", None, None, None)
    with pytest.raises(IstioctlError, match="cannot read a client version"):
        parse_version("command not found\n")


# ------------------------------------------------------------------ resolve_istioctl


def test_resolve_explicit_path(fake: Path) -> None:
    assert resolve_istioctl(str(fake), None) == fake.resolve()


def test_resolve_explicit_missing_or_not_executable(tmp_path: Path) -> None:
    with pytest.raises(IstioctlError, match="does not exist") as info:
        resolve_istioctl(str(tmp_path / "nope"), None)
    assert "--istio-istioctl" in str(info.value)
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(IstioctlError, match="is not executable"):
        resolve_istioctl(plain, None)


def test_resolve_prefers_provider_then_path(fake: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    on_path = _executable(bindir / "istioctl", FAKE)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert resolve_istioctl(None, fake) == fake
    assert resolve_istioctl(None, tmp_path / "missing") == on_path
    assert resolve_istioctl(None, None) == on_path


def test_resolve_nothing_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(IstioctlError) as info:
        resolve_istioctl(None, None)
    assert "istioctl not found" in str(info.value)
    assert "pass --istio-istioctl PATH or put istioctl on PATH" in str(info.value)


# ------------------------------------------------------------------ the embedded istioctl


def test_drives_the_embedded_istioctl(tmp_path: Path) -> None:
    """install / version / precheck through the same Istioctl the plugin uses."""
    pytest.importorskip("pytest_istiolab.embedded.istioctl")
    pytest.importorskip("pytest_istiolab.embedded.controllers")
    from kube_testkit import embedded_with_controllers

    root = Path(pytest_istiolab.__file__).resolve().parent.parent
    exe = _executable(tmp_path / "istioctl-embedded", (
        f'#!/bin/sh\nexport PYTHONPATH="{root}"\n'
        f'exec {sys.executable} -m pytest_istiolab.embedded.istioctl "$@"\n'))
    with embedded_with_controllers(tmp_path, Timeouts(ready=20.0)) as kube:
        ctl = Istioctl(exe, kube.kubeconfig, None, kube.timeouts)
        assert ctl.version() == IstioVersion("1.26.0", None, None, None)
        ctl.install("demo")
        kube.wait_for_deployments("istio-system")
        assert ctl.version() == IstioVersion("1.26.0", "1.26.0", "1.26.0", 2)
