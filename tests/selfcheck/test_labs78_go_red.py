"""Labs 7 and 8 go red exactly where the mesh's security model is broken.

Each case runs one lab module in a pytest subprocess against an embedded cluster whose model
has one behaviour broken by a tiny plugin, and expects exactly the named tests (with their
parameters) to fail, and the rest of the module to pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

LABS = Path(__file__).resolve().parent.parent / "labs"

PATCHING = """
import pytest
_patch = pytest.MonkeyPatch()
def pytest_unconfigure(config):
    _patch.undo()
"""

BREAKERS = {
    # a STRICT sidecar takes plaintext anyway
    "strict_ignored": """
from pytest_istiolab.embedded.mesh import authn
def pytest_configure(config):
    _patch.setattr(authn, "accepts", lambda snap, pod, port, mtls: True)
""",
    # PERMISSIVE (and no policy) behaves as STRICT
    "permissive_as_strict": """
from pytest_istiolab.embedded.mesh import authn
def pytest_configure(config):
    original = authn.server_mode
    def broken(snap, pod, port):
        mode = original(snap, pod, port)
        return "STRICT" if mode == "PERMISSIVE" else mode
    _patch.setattr(authn, "server_mode", broken)
""",
    # any signature verifies
    "bad_signature_accepted": """
from pytest_istiolab.embedded.mesh import jwtauthn
def pytest_configure(config):
    _patch.setattr(jwtauthn, "_signature", lambda token, header, jwks: None)
""",
    # exp is not checked (a clock skew of a century)
    "expired_accepted": """
from pytest_istiolab.embedded.mesh import jwtauthn
def pytest_configure(config):
    _patch.setattr(jwtauthn, "CLOCK_SKEW", 100 * 365 * 86400.0)
""",
    # a request no ALLOW rule matches is let through
    "allow_without_match_passes": """
from pytest_istiolab.embedded.mesh import authz
def pytest_configure(config):
    original = authz._with_action
    _patch.setattr(authz, "_with_action",
                   lambda policies, action: [] if action == "ALLOW" else
                   original(policies, action))
""",
}

LEGACY = "test_reachability_matrix[{}-sleep.legacy-to-httpbin.{}]"
# The first cell of a phase waits until both servers show the phase's mode (Lab 7's enter():
# legacy refused under STRICT, answered otherwise), so with the mode broken that cell goes
# red too, and so do the Lab 8 checks polled together with the policy's denial (expect_all).
FIRST_CELL = "test_reachability_matrix[{}-sleep.foo-to-httpbin.foo]"
CASES = [
    ("strict_ignored", "test_lab07_mtls.py",
     {LEGACY.format("strict", "foo"), LEGACY.format("strict", "bar"), FIRST_CELL.format("strict"),
      "test_plaintext_from_a_sidecar_to_a_strict_server_is_a_503"}),
    ("permissive_as_strict", "test_lab07_mtls.py",
     {LEGACY.format(phase, to) for phase in ("baseline", "permissive") for to in ("foo", "bar")}
     | {FIRST_CELL.format("baseline"), FIRST_CELL.format("permissive"),
        "test_no_peer_authentication_and_no_destination_rule_for_the_lab",
        "test_plaintext_request_under_permissive_carries_no_xfcc"}),
    ("bad_signature_accepted", "test_lab08_jwt.py", {"test_token_with_a_bad_signature_is_401"}),
    ("expired_accepted", "test_lab08_jwt.py", {"test_expired_token_is_401"}),
    ("allow_without_match_passes", "test_lab08_jwt.py",
     {"test_no_token_is_denied_under_the_policy", "test_groups_claim_condition",
      "test_valid_token_is_allowed_under_the_policy",
      "test_verified_token_is_not_forwarded_to_the_application"}),
]


@pytest.mark.parametrize("breaker,module,expected", CASES, ids=[c[0] for c in CASES])
def test_security_checks_go_red_when_the_model_breaks(pytester, breaker, module, expected):
    pytester.makepyfile(**{f"break_{breaker}": PATCHING + BREAKERS[breaker]})
    result = pytester.runpytest_subprocess(str(LABS / module), "-p", f"break_{breaker}",
                                           "-p", "no:cacheprovider", "-q", "-rf",
                                           "--istio-seed=7")
    failed = {line.split("::", 1)[-1].split(" - ")[0].strip()
              for line in result.outlines if line.startswith("FAILED ")}
    assert failed == expected
    assert result.parseoutcomes().get("passed", 0) > 0, "the rest of the lab must still pass"


RECORD_RESTORE = """
import json, os
from pytest_istiolab.deploy import meshwide
def _record(config):
    original = meshwide.MeshWide.restore
    def restore(self):
        kube = self.session.kube
        before = [p["metadata"]["name"] for p in
                  kube.list("security.istio.io/v1beta1", "PeerAuthentication", "istio-system")]
        original(self)
        after = [p["metadata"]["name"] for p in
                 kube.list("security.istio.io/v1beta1", "PeerAuthentication", "istio-system")]
        with open(os.environ["ISTIOLAB_RESTORE_RECORD"], "w") as f:
            json.dump({"before": before, "after": after}, f)
    _patch.setattr(meshwide.MeshWide, "restore", restore)
"""


def test_mesh_wide_strict_is_restored_after_a_failing_test(pytester, monkeypatch, tmp_path):
    """The mesh-wide PeerAuthentication the lab applied is gone again after the module, also
    when a test under STRICT failed (the fresh embedded mesh had none before)."""
    record = tmp_path / "restore.json"
    monkeypatch.setenv("ISTIOLAB_RESTORE_RECORD", str(record))
    pytester.makepyfile(break_and_record=PATCHING + BREAKERS["strict_ignored"] + RECORD_RESTORE
                        + "\n_break = pytest_configure\n"
                        "def pytest_configure(config):\n    _break(config)\n    _record(config)\n")
    result = pytester.runpytest_subprocess(
        str(LABS / "test_lab07_mtls.py"), "-p", "break_and_record", "-p", "no:cacheprovider",
        "-q", "-k", "strict-sleep.legacy-to-httpbin.foo", "--istio-seed=7")
    assert result.parseoutcomes().get("failed") == 1, result.outlines[-5:]
    seen = json.loads(record.read_text())
    assert seen == {"before": ["default"], "after": []}
