"""The embedded cluster's ``istioctl``: a console program speaking istioctl 1.26's CLI.

It talks to the cluster only through the Kubernetes API (the ``kubernetes`` client's REST
layer), so it works against the embedded API server and, for what it models, against any
cluster. Rendering is pure (:func:`render_install`); :class:`~.backend.StoreBackend` lets
tests run the same install/uninstall flow against a Store without a server.

Scope and limitations: commands ``install``/``apply``/``upgrade``/``manifest apply``,
``manifest generate``, ``uninstall --purge``, ``version``, ``proxy-status``, ``tag
set/list/remove``, ``x precheck``, ``profile list``, ``kube-inject``, ``analyze`` (IST0101
only); profiles default, demo, minimal, empty; the releases of :mod:`..install.releases`
(one program; ``bin/istioctl-<version>`` says which istioctl it is); any revision
(``--set revision=``/``-r``). ``uninstall --revision``, ``proxy-config`` and every other
command say they are not modelled and exit 1.
"""

from __future__ import annotations

from ..install import render_install
from .backend import ApiError, RestBackend, StoreBackend
from .cli import main
from .installer import Installer

__all__ = ["ApiError", "Installer", "RestBackend", "StoreBackend", "main", "render_install"]
