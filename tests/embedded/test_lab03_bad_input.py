"""Bad input for Lab 3 (issue 3, "Must show"): a manifest with a misspelt field name.

Istio's CRDs carry structural schemas, so kube-apiserver rejects a field they do not declare;
how depends on the client (schema.py has the rules). These tests drive the embedded API
server with the clients a person or the suite uses — the kubernetes Python client, kubectl
1.37 and the library's ``Kube``/``Applier`` — and check the messages they show.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from api_testkit import Api, Kubectl, api_fixture, kubectl_fixture  # noqa: F401
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_istiolab.embedded.install.crds import istio_crds
from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube import Applier, Kube, status_message

GROUP, VERSION, PLURAL = "networking.istio.io", "v1alpha3", "virtualservices"
TYPO = """\
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosst:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
"""
FIXED = TYPO.replace("hosst", "hosts")
STRICT = ('VirtualService in version "v1alpha3" cannot be handled as a VirtualService: '
          'strict decoding error: unknown field "spec.hosst"')
APPLY = ("failed to create typed patch object (default/reviews; networking.istio.io/v1alpha3, "
         "Kind=VirtualService): .spec.hosst: field not declared in schema")


@pytest.fixture
def istio_api(api: Api) -> Api:
    crds = api.rt("apiextensions.k8s.io", "customresourcedefinitions")
    for crd in istio_crds():
        api.store.create(crds, crd)
    return api


@pytest.fixture
def vs_file(tmp_path: Path) -> Path:
    path = tmp_path / "virtual-service-typo.yaml"
    path.write_text(TYPO)
    return path


def _body(text: str) -> dict:
    return yaml.safe_load(text)


def _stored(api: Api) -> dict | None:
    return api.store.try_get(api.rt(GROUP, PLURAL), "default", "reviews")


# ------------------------------------------------------------------ kubernetes Python client
def test_server_side_apply_with_a_typo_fails_with_kube_apiservers_message(istio_api):
    objects = client.CustomObjectsApi(istio_api.client())
    with pytest.raises(ApiException) as caught:
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "reviews", _body(TYPO),
            field_manager="test", _content_type="application/apply-patch+yaml")
    assert caught.value.status == 500  # not a metav1.Status error in kube-apiserver: 500
    assert status_message(caught.value) == APPLY
    assert _stored(istio_api) is None


def test_strict_create_is_a_bad_request_and_stores_nothing(istio_api):
    objects = client.CustomObjectsApi(istio_api.client())
    with pytest.raises(ApiException) as caught:
        objects.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, _body(TYPO),
                                                field_validation="Strict")
    assert (caught.value.status, status_message(caught.value)) == (400, STRICT)
    assert _stored(istio_api) is None


def test_default_create_drops_the_field_with_a_warning_header(istio_api):
    """No ``fieldValidation`` means Warn: created, the field pruned, one Warning header."""
    api_client = istio_api.client()
    data, status, headers = client.CustomObjectsApi(api_client) \
        .create_namespaced_custom_object_with_http_info(GROUP, VERSION, "default", PLURAL,
                                                        _body(TYPO))
    assert status == 201
    assert headers.getlist("Warning") == ['299 - "unknown field \\"spec.hosst\\""']
    assert "hosst" not in data["spec"] and "hosst" not in _stored(istio_api)["spec"]


def test_strict_merge_patch_names_the_field_without_the_create_prefix(istio_api):
    objects = client.CustomObjectsApi(istio_api.client())
    objects.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, _body(FIXED))
    with pytest.raises(ApiException) as caught:
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "reviews", {"spec": {"hosst": ["x"]}},
            field_validation="Strict", _content_type="application/merge-patch+json")
    assert (caught.value.status, status_message(caught.value)) == (
        400, 'strict decoding error: unknown field "spec.hosst"')


def test_a_correct_manifest_is_accepted_by_every_path(istio_api):
    objects = client.CustomObjectsApi(istio_api.client())
    objects.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "reviews", _body(FIXED), field_manager="test",
        _content_type="application/apply-patch+yaml")
    assert _stored(istio_api)["spec"]["hosts"] == ["reviews"]


# ------------------------------------------------------------------ kubectl 1.37
def test_kubectl_apply_reports_the_strict_decoding_error(istio_api, kubectl: Kubectl, vs_file):
    result = kubectl.run("apply", "-f", str(vs_file), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (f'Error from server (BadRequest): error when creating '
                                     f'"{vs_file}": {STRICT}')


def test_kubectl_apply_over_an_existing_object_reports_the_patch_error(istio_api, kubectl,
                                                                        vs_file, tmp_path):
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(FIXED)
    kubectl.run("apply", "-f", str(fixed))
    result = kubectl.run("apply", "-f", str(vs_file), check=False)
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith(
        f'error when patching "{vs_file}": strict decoding error: unknown field "spec.hosst"')
    assert _stored(istio_api)["spec"]["hosts"] == ["reviews"]


def test_kubectl_server_side_apply_reports_the_typed_patch_error(istio_api, kubectl, vs_file):
    result = kubectl.run("apply", "--server-side", "-f", str(vs_file), check=False)
    assert (result.returncode, result.stderr.strip()) == (1, f"Error from server: {APPLY}")


def test_kubectl_validate_warn_prints_the_warning_and_drops_the_field(istio_api, kubectl,
                                                                      vs_file):
    result = kubectl.run("apply", "--validate=warn", "-f", str(vs_file))
    assert result.stdout.strip() == "virtualservice.networking.istio.io/reviews created"
    assert result.stderr.strip() == 'Warning: unknown field "spec.hosst"'
    assert "hosst" not in _stored(istio_api)["spec"]


# ------------------------------------------------------------------ the library
def test_kube_apply_raises_a_cluster_error_naming_the_object(istio_api, kubectl):
    kube = Kube(kubectl.kubeconfig)
    try:
        with pytest.raises(ClusterError) as caught:
            kube.apply([_body(TYPO)], namespace="default")
    finally:
        kube.close()
    assert caught.value.cause == (
        f"apply virtualservice.networking.istio.io/reviews -n default failed: {APPLY}")


def test_applier_names_the_manifest_and_cleans_up_what_it_applied(istio_api, kubectl,
                                                                  tmp_path):
    """A two-document manifest whose second document is wrong: the error names the file and
    the object; the first document was applied and is still removed by ``cleanup``."""
    manifest = tmp_path / "two.yaml"
    manifest.write_text(FIXED.replace("name: reviews", "name: ratings") + "---\n" + TYPO)
    kube = Kube(kubectl.kubeconfig)
    applier = Applier(kube, "default")
    try:
        with pytest.raises(ClusterError) as caught:
            applier(manifest)
        assert str(caught.value).startswith(f"{manifest}: apply virtualservice.networking."
                                            "istio.io/reviews -n default failed: ")
        assert ".spec.hosst: field not declared in schema" in str(caught.value)
        assert [r.name for r in applier.applied] == ["ratings"]
        applier.cleanup()
        assert istio_api.store.try_get(istio_api.rt(GROUP, PLURAL), "default", "ratings") is None
    finally:
        kube.close()
