"""``kubectl auth can-i`` and ``kubectl auth whoami``: the self-review endpoints.

RBAC is not modelled: the embedded API server lets every client do everything (Roles and
bindings are stored, never evaluated). So a ``SelfSubjectAccessReview`` is always allowed,
a ``SelfSubjectRulesReview`` lists ``*`` rules, and ``SelfSubjectReview`` names one
administrator; each answer carries a ``Warning: 299`` saying so, which kubectl prints.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from .params import read_body
from .responses import bad_request, json_response
from .writes import with_warnings

Obj = dict[str, Any]
NOT_MODELLED = ("RBAC is not modelled by the embedded cluster: every request is allowed "
                "(Roles and RoleBindings are stored but not evaluated)")
REASON = "the embedded cluster does not model RBAC: every request is allowed"
USER = {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins",
                                                    "system:authenticated"]}


async def _review(request: web.Request, kind: str) -> Obj:
    body = await read_body(request)
    if body is None:
        raise bad_request("the request body is empty")
    if body.get("kind") not in (None, kind):
        raise bad_request(f"{body.get('kind')} cannot be handled as a {kind}")
    out = copy.deepcopy(body)
    out.setdefault("metadata", {})["creationTimestamp"] = None
    return out


async def self_access_review(request: web.Request) -> web.Response:
    review = await _review(request, "SelfSubjectAccessReview")
    review.update(apiVersion="authorization.k8s.io/v1", kind="SelfSubjectAccessReview")
    review["status"] = {"allowed": True, "reason": REASON}
    return with_warnings(json_response(review, 201), [NOT_MODELLED])


async def self_rules_review(request: web.Request) -> web.Response:
    review = await _review(request, "SelfSubjectRulesReview")
    review.update(apiVersion="authorization.k8s.io/v1", kind="SelfSubjectRulesReview")
    review["status"] = {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": False, "evaluationError": REASON}
    return with_warnings(json_response(review, 201), [NOT_MODELLED])


async def self_subject_review(request: web.Request) -> web.Response:
    review = await _review(request, "SelfSubjectReview")
    review.update(apiVersion="authentication.k8s.io/v1", kind="SelfSubjectReview")
    review["status"] = {"userInfo": dict(USER)}
    return with_warnings(json_response(review, 201), [
        "authentication is not modelled by the embedded cluster: every client is "
        "kubernetes-admin"])
