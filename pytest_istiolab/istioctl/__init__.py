"""The istioctl layer: find, fetch (checksum-verified) and run ``istioctl``, and parse its output.

The same code runs a real istioctl and the embedded cluster's; which executable is one of the two
things that differ per cluster provider. Uses the foundation modules only.
"""

from pytest_istiolab.istioctl.driver import Istioctl, IstioVersion, parse_version, resolve_istioctl
from pytest_istiolab.istioctl.provisioning import DEFAULT_RELEASE_URL, provision_istioctl

__all__ = ["DEFAULT_RELEASE_URL", "IstioVersion", "Istioctl", "parse_version",
           "provision_istioctl", "resolve_istioctl"]
