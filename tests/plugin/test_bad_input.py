"""Bad input gets a clear error naming the cause and the fix, without a traceback."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.usefixtures("_no_istiolab_env")  # see conftest.py


def test_a_manifest_that_does_not_parse_names_file_and_line(pytester):
    bad = pytester.path / "broken.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n")
    pytester.makepyfile(f"""
        import pytest
        pytestmark = pytest.mark.lab(2)

        def test_apply_broken(apply):
            apply({str(bad)!r})
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*ManifestError: {bad}:5:*"])
    assert "Traceback" not in result.stdout.str()
    assert "site-packages" not in result.stdout.str()


def test_a_pod_that_never_gets_ready_is_named_with_its_phase_and_events(pytester):
    manifest = pytester.path / "never-ready.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "never-ready"},
        "spec": {"selector": {"matchLabels": {"app": "never-ready"}},
                 "template": {"metadata": {"labels": {"app": "never-ready"}},
                              "spec": {"containers": [{"name": "app",
                                                       "image": "example.invalid/nope:1"}]}}}}))
    pytester.makepyfile(f"""
        import pytest
        pytestmark = pytest.mark.lab(2)

        def test_wait(apply, kube, lab_namespace):
            apply({str(manifest)!r})
            kube.wait_for_deployments(lab_namespace, ["never-ready"], timeout=3)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "ReadinessError" in text and "never-ready-" in text  # the pod by name
    assert "Pending" in text                                     # its phase
    assert "ErrImagePull" in text or "ImagePullBackOff" in text  # its events / state
    assert "Traceback" not in text


def test_existing_cluster_unreachable_fails_fast_naming_the_context(pytester):
    kubeconfig = pytester.path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod-mesh",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "prod-mesh", "context": {"cluster": "c", "user": "u"}}]}))
    pytester.makepyfile("def test_x(cluster):\n    pass\n")
    # A hang guard, not a speed goal (those are the benchmark's): the pre-flight check is bounded
    # by its own named timeout, and the message says the connection was refused, not timed out.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--istio-cluster=existing",
                                           "--istio-context=prod-mesh",
                                           f"--istio-kubeconfig={kubeconfig}", timeout=300)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*prod-mesh*connection refused*"])
    assert "Traceback" not in result.stderr.str()


def test_unknown_context_lists_the_known_ones(pytester):
    kubeconfig = pytester.path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}},
                     {"name": "b", "context": {"cluster": "c", "user": "u"}}]}))
    result = pytester.runpytest_subprocess("--istio-cluster=existing", "--istio-context=nope",
                                           f"--istio-kubeconfig={kubeconfig}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*context 'nope' is not in*contexts there: a, b*"])
