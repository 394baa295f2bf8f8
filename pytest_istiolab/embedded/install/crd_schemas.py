"""Structural openAPIV3Schemas for the ``spec`` of the Istio 1.26 resources the labs use.

Fields are those of the 1.26 APIs (VirtualService, DestinationRule, Gateway, ServiceEntry,
PeerAuthentication, RequestAuthentication, AuthorizationPolicy, Telemetry). They are exact
where the labs write (routes, matches, subsets, traffic policies, servers, mTLS, JWT rules,
authorization rules) so that a misspelt field is reported the way kube-apiserver reports
it; deeper or rarely used parts are ``x-kubernetes-preserve-unknown-fields`` objects.
Validation of values (enums, patterns, CEL rules) is not modelled.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

S: Schema = {"type": "string"}
I: Schema = {"type": "integer"}  # noqa: E741
B: Schema = {"type": "boolean"}
N: Schema = {"type": "number"}
ANY: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
INT_OR_STR: Schema = {"x-kubernetes-int-or-string": True}
STRMAP: Schema = {"type": "object", "additionalProperties": S}


def obj(**props: Schema) -> Schema:
    return {"type": "object", "properties": props}


def arr(item: Schema) -> Schema:
    return {"type": "array", "items": item}


def mapof(value: Schema) -> Schema:
    return {"type": "object", "additionalProperties": value}


STRS = arr(S)
STRING_MATCH = obj(exact=S, prefix=S, regex=S)
PERCENT = obj(value=N)
SELECTOR = obj(matchLabels=STRMAP)
TARGET_REF = obj(group=S, kind=S, name=S, namespace=S)
PORT_SELECTOR = obj(number=I)
DESTINATION = obj(host=S, subset=S, port=PORT_SELECTOR)
HEADER_OPS = obj(set=STRMAP, add=STRMAP, remove=STRS)
HEADERS = obj(request=HEADER_OPS, response=HEADER_OPS)

# ------------------------------------------------------------ VirtualService
HTTP_MATCH = obj(
    name=S, uri=STRING_MATCH, scheme=STRING_MATCH, method=STRING_MATCH,
    authority=STRING_MATCH, headers=mapof(STRING_MATCH), port=I, sourceLabels=STRMAP,
    gateways=STRS, queryParams=mapof(STRING_MATCH), ignoreUriCase=B,
    withoutHeaders=mapof(STRING_MATCH), sourceNamespace=S, statPrefix=S)
HTTP_ROUTE_DEST = obj(destination=DESTINATION, weight=I, headers=HEADERS)
FAULT = obj(
    delay=obj(fixedDelay=S, exponentialDelay=S, percent=I, percentage=PERCENT),
    abort=obj(httpStatus=I, grpcStatus=S, http2Error=S, percentage=PERCENT))
HTTP_ROUTE = obj(
    name=S, match=arr(HTTP_MATCH), route=arr(HTTP_ROUTE_DEST),
    redirect=obj(uri=S, authority=S, port=I, derivePort=S, scheme=S, redirectCode=I),
    directResponse=obj(status=I, body=ANY), delegate=obj(name=S, namespace=S),
    rewrite=obj(uri=S, authority=S, uriRegexRewrite=obj(match=S, rewrite=S)),
    timeout=S,
    retries=obj(attempts=I, perTryTimeout=S, retryOn=S, retryRemoteLocalities=B,
                retryIgnorePreviousHosts=B, backoff=S),
    fault=FAULT, mirror=DESTINATION, mirrors=arr(obj(destination=DESTINATION,
                                                     percentage=PERCENT)),
    mirrorPercent=I, mirrorPercentage=PERCENT,
    corsPolicy=ANY, headers=HEADERS)
L4_MATCH = obj(destinationSubnets=STRS, port=I, sourceLabels=STRMAP, gateways=STRS,
               sourceNamespace=S, sniHosts=STRS)
ROUTE_DEST = obj(destination=DESTINATION, weight=I)
VIRTUAL_SERVICE = obj(
    hosts=STRS, gateways=STRS, http=arr(HTTP_ROUTE),
    tls=arr(obj(match=arr(L4_MATCH), route=arr(ROUTE_DEST))),
    tcp=arr(obj(match=arr(L4_MATCH), route=arr(ROUTE_DEST))), exportTo=STRS)

# ----------------------------------------------------------- DestinationRule
CONNECTION_POOL = obj(
    tcp=obj(maxConnections=I, connectTimeout=S, tcpKeepalive=ANY, maxConnectionDuration=S,
            idleTimeout=S),
    http=obj(http1MaxPendingRequests=I, http2MaxRequests=I, maxRequestsPerConnection=I,
             maxRetries=I, idleTimeout=S, h2UpgradePolicy=S, useClientProtocol=B,
             maxConcurrentStreams=I))
OUTLIER = obj(consecutiveErrors=I, consecutive5xxErrors=I, consecutiveGatewayErrors=I,
              consecutiveLocalOriginFailures=I, splitExternalLocalOriginErrors=B, interval=S,
              baseEjectionTime=S, maxEjectionPercent=I, minHealthPercent=I)
CLIENT_TLS = obj(mode=S, clientCertificate=S, privateKey=S, caCertificates=S,
                 credentialName=S, subjectAltNames=STRS, sni=S, insecureSkipVerify=B,
                 caCrl=S)
LOAD_BALANCER = obj(simple=S, consistentHash=ANY, localityLbSetting=ANY, warmupDurationSecs=S,
                    warmup=ANY)
TRAFFIC_POLICY = obj(
    loadBalancer=LOAD_BALANCER, connectionPool=CONNECTION_POOL, outlierDetection=OUTLIER,
    tls=CLIENT_TLS, tunnel=ANY, proxyProtocol=ANY, retryBudget=ANY,
    portLevelSettings=arr(obj(port=PORT_SELECTOR, loadBalancer=LOAD_BALANCER,
                              connectionPool=CONNECTION_POOL, outlierDetection=OUTLIER,
                              tls=CLIENT_TLS)))
DESTINATION_RULE = obj(
    host=S, trafficPolicy=TRAFFIC_POLICY,
    subsets=arr(obj(name=S, labels=STRMAP, trafficPolicy=TRAFFIC_POLICY)),
    exportTo=STRS, workloadSelector=SELECTOR)

# ------------------------------------------------------------------ Gateway
SERVER_TLS = obj(
    httpsRedirect=B, mode=S, serverCertificate=S, privateKey=S, caCertificates=S,
    caCrl=S, credentialName=S, credentialNames=STRS, tlsCertificates=arr(ANY),
    subjectAltNames=STRS, verifyCertificateSpki=STRS, verifyCertificateHash=STRS,
    minProtocolVersion=S, maxProtocolVersion=S, cipherSuites=STRS)
GATEWAY = obj(
    selector=STRMAP,
    servers=arr(obj(port=obj(number=I, protocol=S, name=S, targetPort=I), bind=S,
                    hosts=STRS, tls=SERVER_TLS, defaultEndpoint=S, name=S)))

# ------------------------------------------------------------- ServiceEntry
SERVICE_ENTRY = obj(
    hosts=STRS, addresses=STRS,
    ports=arr(obj(number=I, protocol=S, name=S, targetPort=I)),
    location=S, resolution=S,
    endpoints=arr(obj(address=S, ports=mapof(I), labels=STRMAP, network=S, locality=S,
                      weight=I, serviceAccount=S)),
    workloadSelector=SELECTOR, exportTo=STRS, subjectAltNames=STRS)

# --------------------------------------------------------------- security
PEER_AUTHENTICATION = obj(selector=SELECTOR, mtls=obj(mode=S),
                          portLevelMtls=mapof(obj(mode=S)))
JWT_RULE = obj(
    issuer=S, audiences=STRS, jwksUri=S, jwks=S,
    fromHeaders=arr(obj(name=S, prefix=S)), fromParams=STRS,
    outputPayloadToHeader=S, fromCookies=STRS, forwardOriginalToken=B,
    outputClaimToHeaders=arr(obj(header=S, claim=S)), timeout=S)
REQUEST_AUTHENTICATION = obj(selector=SELECTOR, targetRef=TARGET_REF,
                             targetRefs=arr(TARGET_REF), jwtRules=arr(JWT_RULE))
SOURCE = obj(principals=STRS, notPrincipals=STRS, requestPrincipals=STRS,
             notRequestPrincipals=STRS, namespaces=STRS, notNamespaces=STRS, ipBlocks=STRS,
             notIpBlocks=STRS, remoteIpBlocks=STRS, notRemoteIpBlocks=STRS,
             serviceAccounts=STRS, notServiceAccounts=STRS)
OPERATION = obj(hosts=STRS, notHosts=STRS, ports=STRS, notPorts=STRS, methods=STRS,
                notMethods=STRS, paths=STRS, notPaths=STRS)
AUTHORIZATION_POLICY = obj(
    selector=SELECTOR, targetRef=TARGET_REF, targetRefs=arr(TARGET_REF), action=S,
    provider=obj(name=S),
    rules=arr(obj(**{"from": arr(obj(source=SOURCE)), "to": arr(obj(operation=OPERATION)),
                     "when": arr(obj(key=S, values=STRS, notValues=STRS))})))

# ---------------------------------------------------------------- telemetry
PROVIDER_REF = obj(name=S)
TELEMETRY = obj(
    selector=SELECTOR, targetRef=TARGET_REF, targetRefs=arr(TARGET_REF),
    tracing=arr(obj(match=ANY, providers=arr(PROVIDER_REF), randomSamplingPercentage=N,
                    disableSpanReporting=B, customTags=ANY, useRequestIdForTraceSampling=B,
                    enableIstioTags=B)),
    metrics=arr(obj(providers=arr(PROVIDER_REF), overrides=arr(ANY), reportingInterval=S)),
    accessLogging=arr(obj(match=ANY, providers=arr(PROVIDER_REF), disabled=B, filter=ANY)))

SPEC_SCHEMAS: dict[str, Schema] = {
    "VirtualService": VIRTUAL_SERVICE, "DestinationRule": DESTINATION_RULE,
    "Gateway": GATEWAY, "ServiceEntry": SERVICE_ENTRY,
    "PeerAuthentication": PEER_AUTHENTICATION,
    "RequestAuthentication": REQUEST_AUTHENTICATION,
    "AuthorizationPolicy": AUTHORIZATION_POLICY, "Telemetry": TELEMETRY,
}


_REF = "See more details at: https://istio.io/docs/reference/config/"
# The 1.26 CRDs' description of each kind's spec (what ``kubectl explain KIND`` prints for it).
SPEC_DESCRIPTIONS = {
    "VirtualService": "Configuration affecting label/content routing, sni routing, etc. "
                      f"{_REF}networking/virtual-service.html",
    "DestinationRule": "Configuration affecting load balancing, outlier detection, etc. "
                       f"{_REF}networking/destination-rule.html",
    "Gateway": f"Configuration affecting edge load balancer. {_REF}networking/gateway.html",
    "ServiceEntry": "Configuration affecting service registry. "
                    f"{_REF}networking/service-entry.html",
    "Sidecar": "Configuration affecting network reachability of a sidecar. "
               f"{_REF}networking/sidecar.html",
    "EnvoyFilter": "Customizing Envoy configuration generated by Istio. "
                   f"{_REF}networking/envoy-filter.html",
    "WorkloadEntry": "Configuration affecting VMs onboarded into the mesh. "
                     f"{_REF}networking/workload-entry.html",
    "WorkloadGroup": "Describes a collection of workload instances. "
                     f"{_REF}networking/workload-group.html",
    "ProxyConfig": "Provides configuration for individual workloads. "
                   f"{_REF}networking/proxy-config.html",
    "PeerAuthentication": "Peer authentication configuration for workloads. "
                          f"{_REF}security/peer_authentication.html",
    "RequestAuthentication": "Request authentication configuration for workloads. "
                             f"{_REF}security/request_authentication.html",
    "AuthorizationPolicy": "Configuration for access control on workloads. "
                           f"{_REF}security/authorization-policy.html",
    "Telemetry": f"Telemetry configuration for workloads. {_REF}telemetry.html",
    "WasmPlugin": "Extend the functionality provided by the Istio proxy through WebAssembly "
                  f"filters. {_REF}proxy_extensions/wasm-plugin.html",
}


def open_api_schema(kind: str) -> Schema:
    """The openAPIV3Schema of a CRD version: spec as above, status preserved, spec required
    only where 1.26 requires it."""
    spec = SPEC_SCHEMAS.get(kind, {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    if kind in SPEC_DESCRIPTIONS:
        spec = {**spec, "description": SPEC_DESCRIPTIONS[kind]}
    return {"type": "object", "properties": {
        "spec": spec, "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
