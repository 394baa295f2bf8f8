"""``kubectl auth can-i`` / ``auth whoami`` answer, through the pinned kubectl (issue 11).

RBAC is not modelled: everything is allowed, and kubectl prints the API's warning saying so.
"""

from __future__ import annotations

from api_testkit import Api, Kubectl, api_fixture, kubectl_fixture  # noqa: F401


def test_can_i_says_yes_and_that_rbac_is_not_modelled(api: Api, kubectl: Kubectl) -> None:
    out = kubectl.run("auth", "can-i", "create", "pods", "-n", "default")
    assert out.stdout == "yes\n"
    assert "Warning: RBAC is not modelled by the embedded cluster" in out.stderr
    as_sa = kubectl.run("auth", "can-i", "delete", "deployments",
                        "--as", "system:serviceaccount:default:nobody")
    assert as_sa.stdout == "yes\n"


def test_can_i_list_shows_every_rule(api: Api, kubectl: Kubectl) -> None:
    out = kubectl.run("auth", "can-i", "--list")
    assert "*.*" in out.stdout and "[*]" in out.stdout
    assert "RBAC is not modelled" in out.stderr


def test_whoami_names_the_administrator(api: Api, kubectl: Kubectl) -> None:
    out = kubectl.run("auth", "whoami")
    assert "kubernetes-admin" in out.stdout
    assert "authentication is not modelled" in out.stderr
