"""Kube against the embedded API server *with* its controllers: Deployments really roll out.

This is the path every lab takes (apply a manifest, wait for the Deployment, exec in its pod,
delete the namespace); a broken image must come back as a ReadinessError that says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_testkit import embedded_with_controllers

from pytest_istiolab.errors import ReadinessError
from pytest_istiolab.kube import Kube
from pytest_istiolab.timeouts import Timeouts

pytest.importorskip("pytest_istiolab.embedded.controllers")
TIMEOUTS = Timeouts(api_request=5.0, ready=10.0, delete=10.0, exec=5.0, poll_interval=0.02)
NS = "lab"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    with embedded_with_controllers(tmp_path, TIMEOUTS) as k:
        k.create_namespace(NS, {})
        yield k


def client_deployment(name: str, image: str) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": image,
                                                           "command": ["sleep", "inf"]}]}}}}


def test_apply_wait_exec_delete(kube: Kube) -> None:
    kube.apply([client_deployment("sleep", "curlimages/curl:8.16.0")], NS)
    [dep] = kube.wait_for_deployments(NS, ["sleep"])
    assert dep["status"]["readyReplicas"] == 1
    [ready] = kube.wait_for_pods_ready(NS, "app=sleep", count=1)
    name = kube.first_pod(NS, "app=sleep")
    assert name == ready["metadata"]["name"] and name.startswith("sleep-")
    assert kube.exec(NS, name, ["echo", "hi"], container="sleep").stdout == "hi\n"
    kube.delete_namespace(NS)
    assert kube.get("v1", "Namespace", NS) is None


def test_unknown_image_is_explained(kube: Kube) -> None:
    kube.apply([client_deployment("broken", "example.com/not-modelled:1")], NS)
    with pytest.raises(ReadinessError) as info:
        kube.wait_for_deployments(NS, ["broken"], timeout=1.0)
    message = str(info.value)
    assert "deployment broken: 0/1 replicas ready" in message
    assert "pod broken-" in message
    assert "ErrImagePull" in message or "ImagePullBackOff" in message
