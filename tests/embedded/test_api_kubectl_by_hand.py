"""What a trainer types by hand with the real kubectl: ``port-forward`` and ``explain``."""

from __future__ import annotations

from api_testkit import Api, Kubectl, api_fixture, kubectl_fixture  # noqa: F401

PORT_FORWARD_TIMEOUT = 20.0


def test_port_forward_says_it_is_not_modelled_and_names_the_nodeport_way(
        api: Api, kubectl: Kubectl) -> None:
    api.add_pod("web")
    got = kubectl.run("port-forward", "pod/web", "18080:80", check=False,
                      timeout=PORT_FORWARD_TIMEOUT)
    assert got.returncode == 1
    assert "kubectl port-forward is not modelled by the embedded cluster" in got.stderr
    assert "kubectl expose pod web --type=NodePort" in got.stderr
    assert "at least one port must be specified" not in got.stderr
