"""What a trainer types by hand with the real kubectl: ``port-forward`` and ``explain``."""

from __future__ import annotations

import subprocess

from api_testkit import KUBECTL, Api, Kubectl, api_fixture, kubectl_fixture  # noqa: F401

from pytest_istiolab.embedded.install.crds import istio_crds

PORT_FORWARD_TIMEOUT = 20.0


def test_plain_spdy_port_forward_says_it_is_not_modelled_and_names_the_nodeport_way(
        api: Api, kubectl: Kubectl) -> None:
    """kubectl >= 1.31 tunnels SPDY in a websocket (served: test_kubectl_port_forward.py);
    with the tunnel switched off it speaks plain SPDY, which the embedded cluster refuses."""
    api.add_pod("web")
    env = {"HOME": str(kubectl.home), "KUBECONFIG": str(kubectl.kubeconfig),
           "PATH": "/usr/bin:/bin", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
    got = subprocess.run([str(KUBECTL), "port-forward", "pod/web", "18080:80"], env=env,
                         capture_output=True, text=True, timeout=PORT_FORWARD_TIMEOUT)
    assert got.returncode == 1
    assert "plain SPDY port-forwarding" in got.stderr and "not modelled" in got.stderr
    assert "kubectl expose pod web --type=NodePort" in got.stderr
    assert "at least one port must be specified" not in got.stderr


def test_explain_a_core_kind_and_a_nested_field(api: Api, kubectl: Kubectl) -> None:
    pod = kubectl.run("explain", "pods").stdout
    assert pod.startswith("KIND:       Pod\nVERSION:    v1\n")
    assert "Pod is a collection of containers" in pod
    assert "spec\t<PodSpec>" in pod and "apiVersion\t<string>" in pod
    containers = kubectl.run("explain", "pod.spec.containers").stdout
    assert "FIELD: containers <[]Container>" in containers
    assert "image\t<string>" in containers and "name\t<string> -required-" in containers
    strategy = kubectl.run("explain", "deployments.spec.strategy").stdout
    assert strategy.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n")
    assert "DeploymentStrategy describes how to replace existing pods" in strategy
    ports = kubectl.run("explain", "svc.spec.ports").stdout
    # IntOrString's schema is a string (format int-or-string), so kubectl prints <string>
    assert "targetPort\t<string>" in ports and "port\t<integer> -required-" in ports


def test_explain_an_istio_crd_and_its_fields(api: Api, kubectl: Kubectl) -> None:
    for crd in istio_crds():
        api.store.create(api.rt("apiextensions.k8s.io", "customresourcedefinitions"), crd)
    vs = kubectl.run("explain", "virtualservices").stdout
    assert vs.startswith("GROUP:      networking.istio.io\nKIND:       VirtualService\n"
                         "VERSION:    v1\n")
    assert "spec\t<Object>" in vs and "Configuration affecting label/content routing" in vs
    assert "metadata\t<ObjectMeta>" in vs
    http = kubectl.run("explain", "vs.spec.http.route.destination").stdout
    assert "subset\t<string>" in http and "host\t<string>" in http
    dr = kubectl.run("explain", "destinationrule.spec.trafficPolicy", "--api-version",
                     "networking.istio.io/v1beta1").stdout
    assert "VERSION:    v1beta1" in dr and "outlierDetection\t<Object>" in dr
