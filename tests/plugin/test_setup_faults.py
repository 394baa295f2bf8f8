"""A fault of the run stops it once, before any test, with one message (cause and fix) and no
traceback; what the run tells (the seed) is there even with ``-q``; xdist is optional."""

from __future__ import annotations

import os
import socket
import sys

import pytest

pytestmark = pytest.mark.usefixtures("_no_istiolab_env")

NO_CLUSTER = "def test_a():\n    pass\n\ndef test_b():\n    pass\n"


def _one_usage_error(result, *lines: str) -> None:
    __tracebackhide__ = True
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(list(lines))
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    assert text.count("ERROR: ") <= 1, text  # once, not per test


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_out_of_range_is_refused(pytester, seed):
    pytester.makepyfile(NO_CLUSTER)
    _one_usage_error(pytester.runpytest(f"--istio-seed={seed}"),
                     f"*--istio-seed='{seed}' is out of range (0 to 4294967295)*")


def test_read_only_and_install_always_contradict(pytester):
    pytester.makepyfile(NO_CLUSTER)
    _one_usage_error(pytester.runpytest("--istio-read-only=true", "--istio-install=always"),
                     "*--istio-read-only=true and --istio-install=always contradict*",
                     "*fix: drop one of them*")


def test_an_unwritable_conformance_report_is_refused_before_the_tests(pytester):
    locked = pytester.path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        pytester.makepyfile(NO_CLUSTER)
        result = pytester.runpytest_subprocess(
            f"--istio-conformance-report={locked / 'report.json'}")
        _one_usage_error(result, "*--istio-conformance-report=*report.json: not writable*")
        assert "passed" not in result.stdout.str()
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("where", ["missing/report.json", "."])
def test_a_report_in_a_missing_directory_or_a_directory_is_refused(pytester, where):
    pytester.makepyfile(NO_CLUSTER)
    result = pytester.runpytest_subprocess(f"--istio-conformance-report={where}")
    _one_usage_error(result, "*--istio-conformance-report=*")
    assert "passed" not in result.stdout.str()


def test_without_xdist_the_plugin_still_loads(pytester):
    pytester.makepyfile(NO_CLUSTER)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_the_seed_is_printed_with_quiet(pytester):
    pytester.makepyfile(NO_CLUSTER)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--istio-seed=1234")
    result.stdout.fnmatch_lines(["istiolab: seed 1234 (reproduce: --istio-seed=1234)"])


def test_a_modules_tests_share_one_xdist_worker_by_default(pytester):
    body = "\n".join(f"def test_{i}(worker_id):\n    print('WORKER', worker_id)\n"
                     for i in range(6))
    pytester.makepyfile(test_one=body, test_two=body)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=12)
    workers: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        if line.startswith("[gw") and "PASSED" in line:
            worker, _, rest = line.partition("]")
            workers.setdefault(rest.split("::")[0].split()[-1], set()).add(worker)
    assert workers and all(len(w) == 1 for w in workers.values()), workers


@pytest.mark.parametrize("kind", ["binary", "latin-1", "directory"])
def test_a_kubeconfig_that_is_binary_or_a_directory_is_one_usage_error(pytester, kind):
    path = pytester.path / "kubeconfig"
    if kind == "directory":
        path.mkdir()
        want = f"*kubeconfig {path} is a directory, not a file*"
    else:
        path.write_bytes(b"\x00\x01\xff\xfe\x80" * 50 if kind == "binary"
                         else "apiVersion: v1\nkind: Config\n# caf\xe9\n".encode("latin-1"))
        want = f"*kubeconfig {path} is not a kubeconfig: it is not UTF-8 text*"
    pytester.makepyfile(NO_CLUSTER)
    _one_usage_error(pytester.runpytest("--istio-cluster=existing", "--istio-context=x",
                                        f"--istio-kubeconfig={path}"), want)


def test_keep_on_the_embedded_cluster_says_nothing_outlives_it(pytester):
    pytester.makepyfile(NO_CLUSTER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--istio-keep=always")
    result.stdout.fnmatch_lines(["istiolab: --istio-keep=always: nothing is kept on the embedded "
                                 "cluster, which stops with the run*"])


def test_keep_names_what_it_kept_and_the_command_that_deletes_it(tmp_path):
    from pytest_istiolab.report.reporting import kept_lines
    from pytest_istiolab.settings import Settings

    def settings(**kw):
        return Settings(workdir=tmp_path, run_id="ab12cd", **kw)

    existing = settings(cluster="existing", context="prod", keep="on-failure")
    assert kept_lines(existing, failed=False) == []
    (line,) = kept_lines(existing, failed=True)
    assert line.endswith("delete them with: kubectl --context prod delete namespace -l "
                         "istiolab.io/session=ab12cd"), line
    (line,) = kept_lines(settings(cluster="kind", keep="always"), failed=False,
                         kind_cluster="istiolab-1234")
    assert "kept kind cluster istiolab-1234" in line
    assert line.endswith("kind delete cluster --name istiolab-1234")
    assert kept_lines(settings(cluster="existing", context="x"), failed=True) == []  # never


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_the_html_environment_table_names_the_target(pytester, xdist):
    pytester.makepyfile("def test_mesh(istio):\n    pass\n")
    report = pytester.path / "report.html"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--html={report}",
                                           "--istio-seed=7", "--istio-profile=minimal", *xdist)
    result.assert_outcomes(passed=1)
    html = report.read_text()
    for key, value in [("istiolab cluster", "embedded"), ("istiolab profile", "minimal"),
                       ("istiolab seed", "7"), ("istiolab Istio version", "1.26.0"),
                       ("istiolab Kubernetes version", "v1.")]:
        assert f"{key}" in html and value in html, key
    assert "istiolab Istio found" in html


TWO_CLUSTER_TESTS = "def test_a(istio):\n    pass\n\ndef test_b(istio):\n    pass\n"


def test_kind_without_kind_stops_the_serial_run_once(pytester, monkeypatch):
    monkeypatch.setenv("PATH", str(pytester.path))  # neither kind nor docker here
    pytester.makepyfile(TWO_CLUSTER_TESTS)
    _one_usage_error(pytester.runpytest_subprocess("--istio-cluster=kind", "-p",
                                                   "no:cacheprovider"),
                     "*--istio-cluster=kind needs the `kind` CLI, which is not on PATH*",
                     "*fix: install kind*")


def test_an_istioctl_path_that_does_not_exist_stops_the_run_once(pytester):
    pytester.makepyfile(TWO_CLUSTER_TESTS)
    _one_usage_error(pytester.runpytest_subprocess("--istio-istioctl=/nonexistent", "-p",
                                                   "no:cacheprovider"),
                     "*istioctl /nonexistent does not exist*",
                     "*fix: pass --istio-istioctl the path of an istioctl executable*")


@pytest.fixture
def existing_cluster(tmp_path):
    """A reachable cluster that is not the plugin's own: an embedded one, as a kube context."""
    from pytest_istiolab.embedded import EmbeddedCluster

    with EmbeddedCluster(tmp_path / "served") as served:
        yield served


def _without_istioctl(pytester, monkeypatch, tmp_path):
    """No istioctl on PATH (only the Python that runs pytest) and an empty istioctl cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(os.path.realpath(sys.executable))
    monkeypatch.setenv("PATH", str(bin_dir))
    cache = tmp_path / "istioctl-cache"
    monkeypatch.setenv("ISTIOLAB_CACHE_DIR", str(cache))
    pytester.makepyfile(TWO_CLUSTER_TESTS)
    return cache


def test_offline_without_an_istioctl_stops_the_run_once(pytester, monkeypatch, tmp_path,
                                                        existing_cluster):
    cache = _without_istioctl(pytester, monkeypatch, tmp_path)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--istio-cluster=existing", "--istio-context=embedded",
        f"--istio-kubeconfig={existing_cluster.kubeconfig}", "--istio-offline=true")
    _one_usage_error(result, "*istioctl 1.26.0 is not on PATH nor cached at *, and "
                     "--istio-offline forbids downloading it*",
                     "*fix: run once without --istio-offline to fill the cache*")
    assert not cache.exists()


def test_a_failed_download_stops_the_run_once_and_leaves_no_lock_file(
        pytester, monkeypatch, tmp_path, existing_cluster):
    cache = _without_istioctl(pytester, monkeypatch, tmp_path)
    with socket.socket() as closed:  # a port nobody listens on: the download is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--istio-cluster=existing", "--istio-context=embedded",
        f"--istio-kubeconfig={existing_cluster.kubeconfig}",
        f"--istio-release-url=http://127.0.0.1:{port}")
    _one_usage_error(result, f"*downloading http://127.0.0.1:{port}/1.26.0/istio-1.26.0-*"
                     ".tar.gz failed: ConnectError*", "*fix: check the network or proxy*")
    assert not cache.exists()  # no empty lock file, no empty directories


KEEP_MODULES = {
    "test_fails": "import pytest\npytestmark = pytest.mark.lab(2)\n\n"
                  "def test_broken(lab_namespace):\n    assert False, 'on purpose'\n",
    "test_passes": "import pytest\npytestmark = pytest.mark.lab(3)\n\n"
                   "def test_fine(lab_namespace):\n    pass\n",
}


def test_keep_on_failure_under_xdist_keeps_the_failed_modules_namespace_and_names_it(
        pytester, existing_cluster):
    """The workers decide per module and the controller, which sees their reports, names what
    was kept (before, it saw no failure at all) and the one command that deletes it."""
    from pytest_istiolab.kube import Kube
    from pytest_istiolab.timeouts import EMBEDDED

    pytester.makepyfile(**KEEP_MODULES)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--istio-cluster=existing",
        "--istio-context=embedded", f"--istio-kubeconfig={existing_cluster.kubeconfig}",
        f"--istio-istioctl={existing_cluster.istioctl}", "--istio-keep=on-failure")
    result.assert_outcomes(passed=1, failed=1)
    (line,) = [x for x in result.stdout.lines if "--istio-keep=on-failure kept" in x]
    kept = line.split(" kept namespaces ", 1)[1].split(" (label ", 1)[0].split(", ")
    selector = line.split("(label ", 1)[1].split(";", 1)[0]
    assert line.endswith(f"delete them with: kubectl --context embedded delete namespace -l "
                         f"{selector}"), line
    kube = Kube(existing_cluster.kubeconfig, "embedded", EMBEDDED)
    try:
        left = sorted(n["metadata"]["name"] for n in kube.list("v1", "Namespace",
                                                              label_selector=selector))
    finally:
        kube.close()
    assert len(kept) == 1 and "fails" in kept[0], line
    assert left == kept  # the passing module's namespace went, the failing one's stayed
