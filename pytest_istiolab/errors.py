"""Errors pytest-istiolab raises. Each names the cause and the fix; none needs a traceback."""

from __future__ import annotations


class IstioLabError(Exception):
    """Base class: ``str(err)`` is a complete message for a person (cause, then fix)."""

    def __init__(self, cause: str, fix: str | None = None) -> None:
        self.cause, self.fix = cause, fix
        super().__init__(f"{cause}\n  fix: {fix}" if fix else cause)


class UsageError(IstioLabError):
    """Bad options or configuration: reported as a pytest usage error (exit code 4)."""


class ClusterError(IstioLabError):
    """The cluster cannot be created, reached or used."""


class ManifestError(IstioLabError):
    """A manifest cannot be found, parsed or rendered (names file and line)."""


class IstioctlError(IstioLabError):
    """istioctl could not be found, provisioned, or exited non-zero."""


class ReadinessError(IstioLabError):
    """Something never became ready (names the object, its phase and its events)."""


class AccessLogFormatError(IstioLabError, ValueError):
    """A sidecar logs in a custom ``accessLogFormat`` the suite cannot read."""


class ExecError(IstioLabError):
    """A command could not be run in a pod (not: the command exited non-zero)."""
