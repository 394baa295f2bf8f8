"""The plugin surface, through pytester: options, usage errors, markers, header, skips."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("_no_istiolab_env")


def test_unknown_profile_is_a_usage_error_listing_the_profiles(pytester):
    result = pytester.runpytest("--istio-profile=bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--istio-profile='bogus' is not one of the valid values: "
                                 "ambient, default, demo, empty, minimal*"])
    assert "Traceback" not in result.stderr.str()


def test_a_profile_the_embedded_cluster_does_not_model_says_so(pytester):
    result = pytester.runpytest("--istio-profile=ambient")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*embedded cluster cannot run profile 'ambient': ambient mode*",
                                 "*fix: run it on a real cluster*"])


def test_a_release_the_embedded_cluster_does_not_model_names_the_modelled_ones(pytester):
    result = pytester.runpytest("--istio-version=1.24.6")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*embedded cluster models Istio 1.25.5, 1.26.0, 1.26.8, "
                                 "1.27.9, not 1.24.6*"])
    assert "Traceback" not in result.stderr.str()


def test_the_embedded_cluster_runs_the_release_of_istio_version(pytester):
    pytester.makepyfile("def test_x(cluster):\n"
                        "    import subprocess\n"
                        "    out = subprocess.run([str(cluster.handle.istioctl), 'version',\n"
                        "                          '--remote=false'], capture_output=True,\n"
                        "                         text=True).stdout\n"
                        "    print('CLIENT', out.strip())\n")
    result = pytester.runpytest("-s", "--istio-version=1.25.5")
    result.stdout.fnmatch_lines(["*CLIENT client version: 1.25.5*"])


def test_unknown_cluster_provider_lists_the_valid_ones(pytester):
    result = pytester.runpytest("--istio-cluster=minikube")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--istio-cluster='minikube' is not one of the valid values: "
                                 "embedded, kind, existing*"])


def test_bad_seed_is_a_usage_error(pytester):
    result = pytester.runpytest("--istio-seed=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--istio-seed='abc' is not an integer*"])


def test_ini_and_env_set_options_and_the_flag_wins(pytester, monkeypatch):
    pytester.makeini("[pytest]\nistio_profile = minimal\n")
    pytester.makepyfile("def test_x(istio_settings):\n"
                        "    print('PROFILE', istio_settings.profile, istio_settings.seed)\n")
    monkeypatch.setenv("ISTIOLAB_SEED", "77")
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines(["*PROFILE minimal 77*"])
    result = pytester.runpytest("-s", "--istio-profile=default", "--istio-seed=5")
    result.stdout.fnmatch_lines(["*PROFILE default 5*"])


def test_report_header_names_provider_version_profile_seed_kubeconfig(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--istio-seed=42")
    result.stdout.fnmatch_lines(["istiolab: cluster embedded, Istio 1.26.0, profile demo, "
                                 "seed 42, kubeconfig */embedded/kubeconfig"])


def test_markers_are_registered_for_strict_markers(pytester):
    pytester.makepyfile("""
        import pytest
        pytestmark = pytest.mark.lab(3)

        @pytest.mark.check("L3.1-C01")
        @pytest.mark.requires("ingress-gateway")
        def test_x():
            pass
    """)
    result = pytester.runpytest("--strict-markers", "-m", "lab3")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--strict-markers", "-m", "lab4")
    result.assert_outcomes(deselected=1)


def test_requires_skips_with_the_reason_when_the_profile_lacks_it(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.requires("egress-gateway")
        def test_egress():
            pass
    """)
    result = pytester.runpytest("--istio-profile=default", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*profile 'default' has no egress-gateway*"])
    result = pytester.runpytest("--istio-profile=demo")
    result.assert_outcomes(passed=1)


def test_existing_needs_an_explicit_context(pytester):
    result = pytester.runpytest("--istio-cluster=existing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--istio-cluster=existing needs an explicit context*",
                                 "*fix: pass --istio-context NAME*"])


def test_kind_without_the_kind_cli_says_what_to_install(pytester, monkeypatch):
    monkeypatch.setenv("PATH", str(pytester.path))  # neither kind nor docker here
    pytester.makepyfile("def test_x(cluster):\n    pass\n")
    result = pytester.runpytest("--istio-cluster=kind", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before any test (tests/plugin/
    result.stderr.fnmatch_lines(["*install kind*"])   # test_setup_faults.py: once, serially)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_realism_is_off_on_and_only_for_the_embedded_cluster(pytester):
    result = pytester.runpytest("--istio-embedded-realism=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--istio-embedded-realism='maybe' is not one of the valid "
                                 "values: off, on*"])
    result = pytester.runpytest("--istio-embedded-realism=on", "--istio-cluster=existing",
                                "--istio-context=x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*is a profile of the embedded cluster, not of existing*"])
    assert "Traceback" not in result.stderr.str()


def test_realism_is_printed_with_the_seed(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-q", "--istio-seed=42", "--istio-embedded-realism=on")
    result.stdout.fnmatch_lines(["istiolab: seed 42, realism on (reproduce: --istio-seed=42 "
                                 "--istio-embedded-realism=on)"])


@pytest.mark.parametrize("flag,value", [("--istio-timeout-scale", "0"),
                                        ("--istio-timeout-scale", "fast"),
                                        ("--istio-test-timeout", "-5")])
def test_bad_timeout_numbers_are_usage_errors(pytester, flag, value):
    result = pytester.runpytest(f"{flag}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{flag}='{value}' is not a number*", "*fix: pass e.g.*"])
    assert "Traceback" not in result.stderr.str()


def test_the_timeout_scale_reaches_the_named_timeouts(pytester):
    pytester.makepyfile("""
        from pytest_istiolab.timeouts import EMBEDDED

        def test_x(istio_settings, cluster):
            assert istio_settings.timeout_scale == 3.0
            assert istio_settings.test_timeout == 30.0
            assert cluster.timeouts.eventually == EMBEDDED.eventually * 3
            assert cluster.kube.timeouts.ready == EMBEDDED.ready * 3
            assert cluster.timeouts.consecutive == EMBEDDED.consecutive
    """)
    result = pytester.runpytest("-q", "-p", "no:randomly", "--istio-timeout-scale=3",
                                "--istio-test-timeout=10")
    result.assert_outcomes(passed=1)


def test_a_hung_test_fails_at_the_test_timeout_and_the_run_goes_on(pytester):
    """A phase that never returns (here: accept() on a socket no one connects to) fails with
    the bound named; the next test still runs."""
    pytester.makepyfile("""
        import socket

        def test_hangs():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                s.listen()
                s.accept()

        def test_next():
            pass
    """)
    result = pytester.runpytest("-q", "-p", "no:randomly", "--istio-test-timeout=1")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*a test phase ran longer than 1 s (--istio-test-timeout)*"])


def test_under_realism_the_session_waits_like_on_a_real_cluster(pytester):
    pytester.makepyfile("""
        def test_x(cluster):
            assert cluster.handle.extra["realism"] == "on"
            assert cluster.timeouts.consecutive == 3
            assert "realism: config push" in cluster.handle.description
    """)
    result = pytester.runpytest("-q", "-p", "no:randomly", "--istio-embedded-realism=on")
    result.assert_outcomes(passed=1)
