"""The Kubernetes layer: the only way the library talks to a cluster.

Owns the client wrapper (apply, get, list, delete, exec, logs, events), readiness waits, status
reading, API discovery, manifests from ``manifests/`` and their applier, port-forward relays, lab
namespaces and cluster inventories. Uses the foundation modules (errors, constants, timeouts,
waiting) and the kubernetes client; never pytest, never a higher layer.
"""

from pytest_istiolab.kube.applier import Applier
from pytest_istiolab.kube.client import Kube
from pytest_istiolab.kube.containers import (
    app_containers,
    container,
    has_sidecar,
    init_containers,
    ready_column,
    running_containers,
)
from pytest_istiolab.kube.discovery import api_resources
from pytest_istiolab.kube.inventory import Inventory, sweep_run_namespaces, take_inventory
from pytest_istiolab.kube.namespaces import Namespaces, lab_namespace_name
from pytest_istiolab.kube.podexec import ExecResult
from pytest_istiolab.kube.portforward import PortForwardRelay
from pytest_istiolab.kube.refs import ObjectRef, status_message

__all__ = [
    "Applier", "ExecResult", "Inventory", "Kube", "Namespaces", "ObjectRef", "PortForwardRelay",
    "api_resources", "app_containers", "container", "has_sidecar", "init_containers",
    "lab_namespace_name", "ready_column", "running_containers", "status_message",
    "sweep_run_namespaces",
    "take_inventory",
]
