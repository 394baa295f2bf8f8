"""Lab 3.4/3.6 checks go red when the embedded mesh misbehaves; the external-host option.

A share of ``tests/labs/test_lab03_service_entry_egress.py`` runs in a pytest subprocess,
against an embedded cluster whose mesh has two behaviours broken by a tiny plugin (and a 1 s
``eventually``, enough for a mesh that applies config synchronously); exactly the tests of
those behaviours must fail while their neighbours pass. More breakers were tried once by
hand: no peer-metadata headers -> L3.4-C02; 503 for blocked -> L3.4-C04; ServiceEntries
ignored -> L3.4-C06, L3.6-C04/C08/C09; no X-Forwarded-For at the gateway -> L3.6-C08/C09;
cluster names without subset -> L3.6-C09. Two stay here, in one run, to keep it short.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_istiolab import constants as c
from pytest_istiolab.embedded.mesh import internet
from pytest_istiolab.errors import ManifestError, UsageError
from pytest_istiolab.kube import manifests
from pytest_istiolab.settings import from_lookup

MODULE = Path(__file__).resolve().parent.parent / "labs" / "test_lab03_service_entry_egress.py"
FILES = "lab03-service-entry-egress"

PATCHING = """
import dataclasses
import pytest
from pytest_istiolab import timeouts
from pytest_istiolab.embedded.mesh import config as meshconfig
_patch = pytest.MonkeyPatch()
def pytest_unconfigure(config):
    _patch.undo()
"""

BREAKERS = """
def pytest_configure(config):
    _patch.setattr(timeouts, "EMBEDDED", dataclasses.replace(timeouts.EMBEDDED, eventually=1.0))
    # 1. sidecars keep ALLOW_ANY whatever the mesh config says
    parse = meshconfig.parse_mesh_config
    _patch.setattr(meshconfig, "parse_mesh_config", lambda raw: dataclasses.replace(
        parse(raw), outbound_policy="ALLOW_ANY"))
    # 2. sidecars ignore VirtualServices bound to "mesh": the egress route is never taken
    build = meshconfig.build_snapshot
    def without_mesh_routes(runtime, rv):
        snap = build(runtime, rv)
        snap.virtual_services = [vs for vs in snap.virtual_services
                                 if "mesh" not in (vs.get("spec") or {}).get("gateways") or []]
        return snap
    _patch.setattr(meshconfig, "build_snapshot", without_mesh_routes)
"""
# the tests of the two broken behaviours, and neighbours that must stay green
SELECTION = ("blocked or lets_the_host_out or direct_egress or two_origins "
             "or egress_gateway_route")
RED = {"test_outbound_is_blocked_with_an_empty_502",  # 1
       "test_through_the_egress_gateway_the_host_sees_two_origins",  # 2
       "test_sidecar_log_shows_the_egress_gateway_route"}  # 2


def test_egress_checks_go_red_when_the_mesh_breaks(pytester):
    """Two breakers in one run (each costs a cluster start): each turns its own checks red."""
    pytester.makepyfile(break_egress=PATCHING + BREAKERS)
    result = pytester.runpytest_subprocess(str(MODULE), "-p", "break_egress", "-k", SELECTION,
                                           "-p", "no:cacheprovider", "-q", "-rfE",
                                           "--istio-seed=7")
    red = {line.split(" ", 2)[1].split("::")[-1] for line in result.outlines
           if line.startswith(("FAILED ", "ERROR "))}
    assert red == RED, result.stdout.str()[-3000:]
    assert result.parseoutcomes().get("passed") == 2, "the neighbours must still pass"


# ------------------------------------------------------------ the external host
def _settings(**given: str):
    by_flag = {f"--istio-{k.replace('_', '-')}": v for k, v in given.items()}
    return from_lookup(lambda opt: by_flag.get(opt.flag), Path("."))


def test_the_embedded_cluster_models_exactly_the_hosts_the_option_allows() -> None:
    assert set(c.EMBEDDED_EXTERNAL_HOSTS) == set(internet.PUBLIC_HOSTS)
    assert _settings().external_host == "httpbin.org"
    assert _settings(external_host="HTTPBIN.ORG.").external_host == "httpbin.org"


def test_a_real_cluster_takes_any_host_name_and_refuses_urls() -> None:
    real = _settings(cluster="existing", context="kind-mesh", external_host="httpbin.corp.lan")
    assert real.external_host == "httpbin.corp.lan"
    with pytest.raises(UsageError, match="is not a DNS host name"):
        _settings(cluster="existing", context="x", external_host="http://httpbin.org/")


def test_the_embedded_cluster_refuses_a_host_it_does_not_model() -> None:
    with pytest.raises(UsageError, match="models only httpbin.org as an external host"):
        _settings(external_host="httpbin.corp.lan")


@pytest.mark.parametrize("name", ["serviceentry.yaml", "egressse.yaml", "egressgw.yaml",
                                  "egressvs.yaml"])
def test_lab_files_take_the_host_and_need_it(name: str) -> None:
    docs = manifests.load(f"{FILES}/{name}", EXTERNAL_HOST="httpbin.corp.lan")
    assert "httpbin.corp.lan" in manifests.dump(docs) and "httpbin.org" not in manifests.dump(docs)
    with pytest.raises(ManifestError, match=r"uses \$\{EXTERNAL_HOST\}"):
        manifests.load(f"{FILES}/{name}", UNRELATED="x")
