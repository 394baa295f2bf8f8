"""Unknown fields of built-in kinds (a Service's ``spec.portz``, a Deployment's misspelt
``spec.template.spec.containers[0].imagePullPolicyy``) meet kube-apiserver's rules, as a custom
resource's do: Strict (kubectl's default) fails naming the field, Warn (the server default)
prunes it with a warning, server-side apply always fails. Before, the embedded API server
stored them as sent: a manifest mistake a real cluster rejects passed here."""

from __future__ import annotations

from pathlib import Path

import httpx
from api_testkit import Api, Kubectl, api_fixture, kubectl_fixture  # noqa: F401

from pytest_istiolab.embedded.builtin_schemas import schema_for_kind
from pytest_istiolab.embedded.resources import BUILTIN_TYPES

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "portz": [{"port": 80}],
                    "ports": [{"port": 80, "targetPort": 8080}]}}
DEPLOYMENT_TYPO = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: docker.io/mccutchen/go-httpbin:v2.15.0
        imagePullPolicyy: IfNotPresent
"""
FIELD = "spec.template.spec.containers[0].imagePullPolicyy"


def test_every_modelled_builtin_kind_has_a_schema() -> None:
    missing = [f"{t.group}/{t.preferred_version} {t.kind}" for t in BUILTIN_TYPES
               if schema_for_kind(t.group, t.preferred_version, t.kind) is None]
    assert missing == []


def test_strict_create_of_a_service_names_the_unknown_field(api: Api) -> None:
    """Raw HTTP: the kubernetes client (37) refuses the unknown field itself, before sending."""
    answer = httpx.post(f"{api.url}/api/v1/namespaces/default/services",
                        params={"fieldValidation": "Strict"}, json=SERVICE)
    assert (answer.status_code, answer.json()["message"]) == (
        400, 'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.portz"')
    assert api.store.try_get(api.rt("", "services"), "default", "web") is None


def test_default_create_prunes_the_field_with_a_warning(api: Api) -> None:
    answer = httpx.post(f"{api.url}/api/v1/namespaces/default/services", json=SERVICE)
    assert answer.status_code == 201
    assert answer.headers.get_list("Warning") == ['299 - "unknown field \\"spec.portz\\""']
    stored = api.store.try_get(api.rt("", "services"), "default", "web")
    assert "portz" not in stored["spec"] and stored["spec"]["ports"][0]["port"] == 80


def test_kubectl_apply_rejects_a_nested_typo(api: Api, kubectl: Kubectl, tmp_path: Path) -> None:
    path = tmp_path / "deployment.yaml"
    path.write_text(DEPLOYMENT_TYPO)
    result = kubectl.run("apply", "-f", str(path), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (BadRequest): error when creating "{path}": Deployment in version '
        f'"v1" cannot be handled as a Deployment: strict decoding error: unknown field "{FIELD}"')
    server_side = kubectl.run("apply", "--server-side", "-f", str(path), check=False)
    assert server_side.returncode == 1
    assert server_side.stderr.strip() == (
        "Error from server: failed to create typed patch object (default/web; apps/v1, "
        f"Kind=Deployment): .{FIELD}: field not declared in schema")
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(DEPLOYMENT_TYPO.replace("imagePullPolicyy", "imagePullPolicy"))
    assert kubectl.run("apply", "-f", str(fixed), check=False).returncode == 0


def test_free_form_and_map_fields_are_not_unknown(api: Api, kubectl: Kubectl,
                                                  tmp_path: Path) -> None:
    """Labels, annotations, ConfigMap data, IntOrString ports, resource quantities."""
    path = tmp_path / "ok.yaml"
    path.write_text("""\
apiVersion: v1
kind: ConfigMap
metadata: {name: c, labels: {any-key: v}, annotations: {x/y: z}}
data: {anything: "1", other.key: "2"}
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports: [{name: http, port: 80, targetPort: http}]
  selector: {app: s}
""")
    result = kubectl.run("apply", "-f", str(path), check=False)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
