"""Run ``istioctl`` (a real binary, or the embedded cluster's) and parse what it prints.

Which executable runs is the only thing that differs per cluster provider: ``resolve_istioctl``
picks an explicit path, else the provider's own, else ``istioctl`` on ``PATH``. Downloading a
release is not done here (see ``provisioning``).

Every invocation gets the run's kubeconfig and context as ``--kubeconfig=PATH --context=NAME``
placed *before* the subcommand (the one-token ``=`` form, which cobra's subcommand lookup skips
correctly), a timeout, and is reported through ``on_command`` for failure reports.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_istiolab.errors import IstioctlError
from pytest_istiolab.timeouts import Timeouts

OUTPUT_TAIL_LINES = 20
_CLIENT = re.compile(r"^\s*client version:\s*(\S+)", re.M | re.I)
_CONTROL = re.compile(r"^\s*control plane version:\s*(\S+)", re.M | re.I)
_DATA = re.compile(r"^\s*data plane version:\s*(.+)$", re.M | re.I)
_DATA_PART = re.compile(r"(\S+)\s*\((\d+)\s+prox(?:y|ies)\)")
_SHORT = re.compile(r"^\s*v?(\d+\.\d+\S*)\s*$")


@dataclass(frozen=True)
class IstioVersion:
    """What ``istioctl version`` reports; None where it reports nothing (no mesh, no proxies)."""

    client: str
    control_plane: str | None
    data_plane: str | None  # "1.26.0", or "1.25.2, 1.26.0" when proxies disagree
    proxies: int | None


def parse_version(text: str) -> IstioVersion:
    """Parse ``istioctl version`` output (1.2x layouts, and ``--short``'s bare version)."""
    client = _CLIENT.search(text)
    if client is None:
        short = _SHORT.match(text.strip().splitlines()[0]) if text.strip() else None
        if short is None:
            raise IstioctlError(f"cannot read a client version from istioctl output: {text!r}",
                                "check that the executable is istioctl")
        return IstioVersion(short.group(1), None, None, None)
    control = _CONTROL.search(text)
    data_plane, proxies = _parse_data_plane(text)
    return IstioVersion(client.group(1), control.group(1) if control else None,
                        data_plane, proxies)


def _parse_data_plane(text: str) -> tuple[str | None, int | None]:
    line = _DATA.search(text)
    if line is None:
        return None, None
    parts = _DATA_PART.findall(line.group(1))
    if not parts:
        word = line.group(1).split()
        return (word[0].rstrip(",") if word else None), None
    versions = sorted({v.rstrip(",") for v, _ in parts})
    return ", ".join(versions), sum(int(n) for _, n in parts)


def resolve_istioctl(explicit: str | Path | None, provider_default: Path | None) -> Path:
    """The istioctl to run: ``explicit``, else the provider's, else ``istioctl`` on PATH."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise IstioctlError(f"istioctl {path} does not exist",
                                "pass --istio-istioctl the path of an istioctl executable")
        if not os.access(path, os.X_OK):
            raise IstioctlError(f"istioctl {path} is not executable",
                                f"chmod +x {path}, or pass another --istio-istioctl")
        return path.resolve()
    if provider_default is not None and provider_default.is_file():
        return provider_default
    found = shutil.which("istioctl")
    if found:
        return Path(found)
    raise IstioctlError("istioctl not found (no --istio-istioctl, none from the cluster provider, "
                        "none on PATH)",
                        "pass --istio-istioctl PATH or put istioctl on PATH")


class Istioctl:
    """One istioctl executable bound to one cluster (kubeconfig + context)."""

    def __init__(self, path: Path, kubeconfig: Path | str | None = None,
                 context: str | None = None, timeouts: Timeouts | None = None) -> None:
        self.path = Path(path)
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.context = context
        self.timeouts = timeouts or Timeouts()
        self.on_command: Callable[[str, str], None] | None = None
        # called after a command that may recreate the gateways (install, uninstall, upgrade):
        # whoever cached their Service (NodePorts) reads it again
        self.on_mesh_change: Callable[[], None] | None = None

    def argv(self, args: list[str]) -> list[str]:
        """The full command line for ``args``."""
        flags = []
        if self.kubeconfig is not None:
            flags.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            flags.append(f"--context={self.context}")
        return [str(self.path), *flags, *args]

    def run(self, args: list[str], *, input: str | None = None, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``istioctl ARGS``; with ``check`` a non-zero exit raises :class:`IstioctlError`."""
        argv = self.argv(args)
        line = shlex.join(argv)
        limit = timeout if timeout is not None else self.timeouts.istioctl
        try:
            result = run_process(argv, input, limit)
        except subprocess.TimeoutExpired as err:
            output = _text(err.stdout) + _text(err.stderr)
            self._record(line, output + f"\n(killed after {limit:g} s)")
            raise IstioctlError(f"{line} did not finish within {limit:g} s{_tail(output)}",
                                "see its output above; a slow image pull or an unready cluster "
                                "is the usual cause") from err
        except OSError as err:
            self._record(line, str(err))
            raise IstioctlError(f"{line} could not be started: {err}",
                                "check that the file is an istioctl for this platform") from err
        self._record(line, result.stdout + result.stderr)
        if args and args[0] in MESH_CHANGING and self.on_mesh_change is not None:
            self.on_mesh_change()
        if check and result.returncode != 0:
            raise IstioctlError(
                f"{line} exited with code {result.returncode}"
                f"{_tail(result.stdout + result.stderr)}",
                "read the output above; run the same command by hand to investigate")
        return result

    def install(self, profile: str, sets: dict[str, str] | None = None, *,
                timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """``istioctl install --set profile=PROFILE [--set k=v ...] -y``."""
        args = ["install", "--set", f"profile={profile}"]
        for key, value in (sets or {}).items():
            args += ["--set", f"{key}={value}"]
        return self.run([*args, "-y"], timeout=timeout)

    def uninstall(self) -> subprocess.CompletedProcess[str]:
        """``istioctl uninstall --purge -y``."""
        return self.run(["uninstall", "--purge", "-y"])

    def version(self) -> IstioVersion:
        """``istioctl version``, parsed."""
        return parse_version(self.run(["version"], timeout=self.timeouts.api_request * 6).stdout)

    def precheck(self) -> subprocess.CompletedProcess[str]:
        """``istioctl x precheck`` (the manual's pre-installation check)."""
        return self.run(["x", "precheck"], timeout=self.timeouts.api_request * 6)

    def _record(self, line: str, output: str) -> None:
        if self.on_command is not None:
            self.on_command(f"$ {line}", output)


MESH_CHANGING = frozenset({"install", "uninstall", "upgrade", "manifest"})


def run_process(argv: list[str], input: str | None,
                timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in its own process group; on timeout the whole group is killed.

    (``subprocess.run`` kills only the direct child: a wrapper script's grandchild would keep
    the output pipes open and the call would hang past its timeout.)
    """
    with subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr) from None
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _tail(output: str) -> str:
    lines = output.rstrip().splitlines()
    if not lines:
        return " (no output)"
    shown = lines[-OUTPUT_TAIL_LINES:]
    more = f"  ... {len(lines) - len(shown)} earlier lines\n" if len(lines) > len(shown) else ""
    return ":\n" + more + "\n".join(f"  {ln}" for ln in shown)
