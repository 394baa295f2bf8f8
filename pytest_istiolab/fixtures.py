"""Public fixtures of pytest-istiolab (``pytest --fixtures`` shows these docstrings)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TypeVar

import pytest

from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy import (
    Addons,
    App,
    Bookinfo,
    ControlPlane,
    GatewayCredentials,
    Httpbin,
    IstioInstallation,
    MeshLock,
    MeshWide,
    RunInstall,
    Sleep,
    found,
)
from pytest_istiolab.deploy.capabilities import MeshCapabilities, read_capabilities
from pytest_istiolab.errors import IstioLabError
from pytest_istiolab.istioctl import Istioctl
from pytest_istiolab.kube import Applier, Kube, Namespaces, lab_namespace_name, sweep_run_namespaces
from pytest_istiolab.observability import MANUAL_NODE_PORTS, AddonPorts, LoadLoop, PortTaken
from pytest_istiolab.report import recording, reporting
from pytest_istiolab.security import LabCertificates
from pytest_istiolab.settings import Settings
from pytest_istiolab.traffic import Ingress

ADDONS = ("samples/addons/prometheus.yaml", "samples/addons/grafana.yaml",
          "samples/addons/jaeger.yaml", "samples/addons/kiali.yaml", "samples/addons/loki.yaml")


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Our errors already name cause and fix: report them without a traceback."""
    __tracebackhide__ = True
    try:
        yield
    except IstioLabError as err:
        pytest.fail(f"{type(err).__name__}: {err}", pytrace=False)


@pytest.fixture(scope="session")
def istio_settings(pytestconfig: pytest.Config) -> Settings:
    """The run's settings (profile, Istio version, cluster provider, seed, keep policy)."""
    from pytest_istiolab.plugin import SETTINGS_KEY

    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def cluster(istio_settings: Settings, pytestconfig: pytest.Config) -> Iterator[ClusterSession]:
    """The cluster under test: the embedded one (default), or an existing kube context.

    ``cluster.kube`` is the kubernetes client wrapper, ``cluster.kubeconfig`` its config file.
    Created once per session (per xdist worker for the embedded cluster) and removed at the end.
    """
    from pytest_istiolab.plugin import shared_provider

    with _clear_errors():
        session = ClusterSession.open(istio_settings, shared_provider(pytestconfig))
    reporting.register_session(pytestconfig, session)
    yield session
    if istio_settings.keep == "on-failure" and reporting.any_failed(pytestconfig) and hasattr(
            session.provider, "keep"):  # a kind cluster this run made: its namespaces live there
        session.provider.keep = True
    session.close()


@pytest.fixture(scope="session")
def kube(cluster: ClusterSession) -> Kube:
    """The kubernetes client wrapper of :func:`cluster` (apply, get, exec, logs, wait, delete)."""
    return cluster.kube


@pytest.fixture(scope="session")
def istioctl(cluster: ClusterSession) -> Istioctl:
    """The ``istioctl`` for this cluster (``--istio-istioctl``, the provider's, or PATH)."""
    with _clear_errors():
        return cluster.istioctl


@pytest.fixture(scope="session")
def istio(cluster: ClusterSession, istio_settings: Settings,
          pytestconfig: pytest.Config) -> IstioInstallation:
    """Istio installed with ``--istio-profile`` (pre-check, then ``istioctl install -y``).

    ``--istio-install`` decides: ``if-missing`` (default) tests a running istiod as it is and
    reports a version other than ``--istio-version``; ``always`` (re)installs; ``never`` fails
    on a cluster without Istio. Once per run: xdist workers sharing a cluster let the first
    one install, and the others use that installation.
    """
    with _clear_errors():
        installation = RunInstall(cluster).ensure(istio_settings.profile)
    reporting.note_warnings(pytestconfig, installation.warnings)
    try:
        kubernetes = str(cluster.kube.raw_get("/version").get("gitVersion", "unknown"))
    except IstioLabError:  # the table is informative: a failed look-up must not fail tests
        kubernetes = "unknown"
    described = installation.found.describe() if not installation.installed_by_run else (
        f"Istio {istio_settings.version} installed by the run (profile {installation.profile})")
    reporting.note_environment(pytestconfig, described, kubernetes)
    with _clear_errors():
        recording.note_found(pytestconfig, found.control_plane(cluster.kube,
                                                                cluster.handle.provider))
    return installation


@pytest.fixture(scope="session")
def mesh_capabilities(istio: IstioInstallation, pytestconfig: pytest.Config
                      ) -> MeshCapabilities:
    """What the installed mesh has (istiod, ingress/egress gateway, access logs in the default
    format) and where its ingress gateway lives, read from the cluster, not from
    ``--istio-profile``; ``@pytest.mark.requires`` skips by it."""
    from pytest_istiolab.plugin import MESH_KEY

    with _clear_errors():
        found = read_capabilities(istio.session.kube, istio.mesh_config(),
                                  istio.profile if istio.installed_by_run else None)
    pytestconfig.stash[MESH_KEY] = found
    return found


@pytest.fixture(autouse=True)
def _requires(request: pytest.FixtureRequest) -> None:
    """``@pytest.mark.requires``: skip when the installed mesh lacks a capability (read once,
    by the first test that needs one; later ones are skipped before their fixtures run)."""
    from pytest_istiolab.plugin import NEEDS_KEY

    needed = request.node.stash.get(NEEDS_KEY, ())
    if needed:
        mesh: MeshCapabilities = request.getfixturevalue("mesh_capabilities")
        missing = mesh.missing(needed)
        if missing:
            pytest.skip(mesh.reason(missing))


@pytest.fixture(scope="session")
def control_plane(istio: IstioInstallation) -> ControlPlane:
    """The istiod revision injecting the labs' namespaces, read once: ``control_plane.istiod``
    (``istiod`` or ``istiod-<rev>``), ``.mesh_configmap`` (``istio`` or ``istio-<rev>``),
    ``.address`` (what its proxies dial: ``CA_ADDR``, ``discoveryAddress``), ``.revision``.

    The manual assumes the default revision; after a canary upgrade that removed it, the
    checks that name istiod's objects follow Istio 1.26's revisioned names through this.
    """
    with _clear_errors():
        return istio.control_plane()


@pytest.fixture(scope="session")
def addons(cluster: ClusterSession, istio: IstioInstallation,
           istio_settings: Settings) -> Iterator[Addons]:
    """The observability addons (prometheus, grafana, jaeger, kiali, loki) in istio-system.

    Objects that exist already are used as they are; only what the run adds is removed (even
    when the run is interrupted while adding them). What the run adds is labelled with its run
    id; on a cluster shared by xdist workers each worker holds the run's addons lock shared
    while it uses them, and the last one to let go (it gets the lock exclusively) removes them.
    """
    lock = MeshLock(f"{cluster.kube.server}|{cluster.handle.context}|{istio_settings.run_id}"
                    "|addons")
    added = Addons(cluster.kube, ADDONS, run_id=istio_settings.run_id)
    try:
        with lock.shared():
            with _clear_errors():
                added.install()
            yield added
    finally:
        if istio_settings.keep != "always":
            with lock.try_exclusive() as last:
                if last:
                    added.cleanup()


@pytest.fixture(scope="module")
def addon_ports(addons: Addons, cluster: ClusterSession,
                ingress: Ingress) -> Iterator[AddonPorts]:
    """URLs of the addons (a port-forward to each addon's pod, as ``istioctl dashboard`` does,
    and the node address with a NodePort); Services it exposed are put back at the end."""
    ports = AddonPorts(cluster.kube, ingress.address.host)
    yield ports
    ports.close()


@pytest.fixture(scope="module")
def addon_node_ports(mesh_wide: MeshWide, addon_ports: AddonPorts) -> Iterator[dict]:
    """Lab 9.2's ``kubectl patch svc ... NodePort`` block (prometheus 31120, grafana 31121,
    tracing 31122, kiali 31123), undone at module end, before ``mesh_wide`` lets other labs
    (which expect ClusterIP addon Services) run again. A port taken on the cluster: a skip."""
    try:
        try:
            yield {name: addon_ports.expose(name) for name in MANUAL_NODE_PORTS}
        except PortTaken as err:
            pytest.skip(str(err))
    finally:
        addon_ports.restore()


LOAD_REQUESTS = 120


@pytest.fixture(scope="module")
def mesh_load(bookinfo: Bookinfo, ingress: Ingress, cluster: ClusterSession,
              request: pytest.FixtureRequest) -> Iterator[LoadLoop]:
    """Lab 9.2's load loop (D-33: bounded): a burst of ``LOAD_REQUESTS`` (120) requests for
    ``/productpage`` through the ingress gateway (``burst_codes``), then a slow loop on a
    thread for the rest of the module (2 requests a second, "the load script in another
    window"), so rate panels see traffic whatever their window; stopped at module end."""
    loop = LoadLoop(lambda: ingress.get("/productpage").status_code, pause=0.5,
                    max_requests=2400, max_seconds=1200.0)
    loop.burst(LOAD_REQUESTS, cluster.timeouts.eventually * 6,
               progress_every=20 if request.config.get_verbosity() > 0 else 0)
    loop.start()
    try:
        yield loop
    finally:
        loop.stop()


@pytest.fixture(scope="session")
def ingress(cluster: ClusterSession, istio: IstioInstallation) -> Ingress:
    """The ingress gateway as the manual reaches it: NodePort ``http2`` on the node's address."""
    with _clear_errors():
        return cluster.ingress


@pytest.fixture(scope="session")
def _namespaces(cluster: ClusterSession, istio_settings: Settings) -> Iterator[Namespaces]:
    namespaces = Namespaces(cluster.kube, istio_settings.scope_id,  # this worker's alone
                            session=istio_settings.run_id)
    yield namespaces
    if istio_settings.keep == "never":
        namespaces.delete_all()
        sweep_run_namespaces(cluster.kube, istio_settings.scope_id)  # created, never recorded


@pytest.fixture(scope="module")
def lab_namespace(request: pytest.FixtureRequest, istio: IstioInstallation,
                  _namespaces: Namespaces, istio_settings: Settings) -> Iterator[str]:
    """A namespace of this lab module, labelled ``istio-injection=enabled``, unique per run.

    A module that routes through the ingress gateway holds the run's ingress lock for its
    duration: the manual's Gateways all claim hosts ``*``, so two such modules running at
    once on one shared cluster (xdist on kind or an existing context) would route each
    other's traffic.
    """
    name = lab_namespace_name(_module_label(request), istio_settings.scope_id)
    with ExitStack() as stack:
        if _module_uses_ingress(request):
            lock: MeshLock = request.getfixturevalue("ingress_lock")
            stack.enter_context(lock.exclusive())
        with _clear_errors():
            _namespaces.create(name, inject=True)
        yield name
        record_proxies(request.config, _namespaces.kube, name)
        if _should_remove(request, istio_settings):
            _namespaces.delete(name)
        else:
            reporting.note_kept(request.config, [name])


def record_proxies(config: pytest.Config, kube: Kube, namespace: str) -> None:
    """Note the proxies a lab's namespace ran for the conformance report (best effort: a
    namespace that is gone or unreadable records nothing rather than failing the teardown)."""
    try:
        recording.note_found(config, {recording.PROXY_PODS: found.proxy_pods(kube, namespace)})
    except IstioLabError:
        pass


@pytest.fixture(scope="module")
def lab_namespaces(request: pytest.FixtureRequest, istio: IstioInstallation,
                   _namespaces: Namespaces, istio_settings: Settings
                   ) -> Iterator[Callable[..., str]]:
    """More namespaces of this module, as labs with several do (Lab 7: foo, bar, legacy).

    ``lab_namespaces("foo")`` creates ``<module>-foo-<run>`` without the injection label
    (``inject=True`` adds it) and returns its name; all are removed at module end.
    """
    made: list[str] = []

    def create(role: str, *, inject: bool = False) -> str:
        name = lab_namespace_name(f"{_module_label(request)[:40]}-{role}",
                                  istio_settings.scope_id)
        if name not in made:
            with _clear_errors():
                _namespaces.create(name, inject=inject)
            made.append(name)
        return name

    yield create
    for name in made:
        record_proxies(request.config, _namespaces.kube, name)
    if _should_remove(request, istio_settings):
        for name in reversed(made):
            with _clear_errors():
                _namespaces.delete(name)
    else:
        reporting.note_kept(request.config, made)


@pytest.fixture(scope="session")
def ingress_lock(cluster: ClusterSession) -> MeshLock:
    """Serializes the lab modules that route through the (shared) ingress gateway."""
    return MeshLock(f"{cluster.kube.server}|{cluster.handle.context}|ingress")


def _module_uses_ingress(request: pytest.FixtureRequest) -> bool:
    module = request.node.nodeid
    return any(item.nodeid.startswith(module + "::") and
               {"ingress", "bookinfo", "gateway_credentials"} &
               set(getattr(item, "fixturenames", ()))
               for item in request.session.items)


@pytest.fixture
def apply(request: pytest.FixtureRequest, cluster: ClusterSession, lab_namespace: str,
          istio_settings: Settings) -> Iterator[Applier]:
    """Apply a manifest from ``manifests/`` into the lab namespace: ``apply("lab03-.../x.yaml")``.

    Everything applied is deleted when the test ends (unless ``--istio-keep`` says otherwise).
    """
    applier = Applier(cluster.kube, lab_namespace)
    reporting.register_applier(request.node, applier)
    yield applier
    if _should_remove(request, istio_settings):
        with _clear_errors():
            applier.cleanup()


AppT = TypeVar("AppT", bound=App)


def _deployed(request: pytest.FixtureRequest, cluster: ClusterSession, namespace: str,
              settings: Settings, kind: type[AppT]) -> Iterator[AppT]:
    """Deploy a sample app into ``namespace`` for a module; remove it at the end."""
    app = kind(cluster, namespace, Applier(cluster.kube, namespace))
    with _clear_errors():
        app.deploy()
    yield app
    record_proxies(request.config, cluster.kube, namespace)
    if _should_remove(request, settings):
        app.applier.cleanup()


@pytest.fixture(scope="module")
def bookinfo(request: pytest.FixtureRequest, cluster: ClusterSession, istio: IstioInstallation,
             lab_namespace: str, istio_settings: Settings) -> Iterator[Bookinfo]:
    """Bookinfo deployed in the lab namespace with its gateway and default DestinationRules."""
    for app in _deployed(request, cluster, lab_namespace, istio_settings, Bookinfo):
        with _clear_errors():
            app.expose()
        yield app


@pytest.fixture(scope="module")
def sleep(request: pytest.FixtureRequest, cluster: ClusterSession, istio: IstioInstallation,
          lab_namespace: str, istio_settings: Settings) -> Iterator[Sleep]:
    """The ``sleep`` client (curl) deployed in the lab namespace, with its sidecar."""
    yield from _deployed(request, cluster, lab_namespace, istio_settings, Sleep)


@pytest.fixture(scope="module")
def httpbin(request: pytest.FixtureRequest, cluster: ClusterSession, istio: IstioInstallation,
            lab_namespace: str, istio_settings: Settings) -> Iterator[Httpbin]:
    """httpbin (the Istio 1.26 sample) deployed in the lab namespace, with its sidecar."""
    yield from _deployed(request, cluster, lab_namespace, istio_settings, Httpbin)


@pytest.fixture(scope="session")
def certs() -> Iterator[LabCertificates]:
    """Lab 6's certificate files (the manual's ``example.com`` root, httpbin, helloworld and
    client certificates, ``new_certificates/``) in a private temporary directory, removed at
    the end. Keys are mode 0600 and never printed."""
    made = LabCertificates()
    yield made
    made.remove()


@pytest.fixture(scope="module")
def gateway_credentials(request: pytest.FixtureRequest, cluster: ClusterSession,
                        istio: IstioInstallation, lab_namespace: str,
                        istio_settings: Settings) -> Iterator[GatewayCredentials]:
    """Creates the gateway's ``credentialName`` Secrets in the gateway's namespace (the manual's
    ``istio-system``; ``istio-ingress`` in the Helm layout) as the manual does
    (``kubectl create secret tls|generic``); those still there are deleted at the end.

    The manual's Secret names are the same for every worker of a run: a module using them
    holds the ingress lock (see :func:`lab_namespace`) until they are deleted."""
    creds = GatewayCredentials(cluster.kube, namespace=cluster.ingress.namespace)
    yield creds
    if _should_remove(request, istio_settings):
        with _clear_errors():
            creds.cleanup()


@pytest.fixture(scope="session")
def mesh_lock(cluster: ClusterSession) -> MeshLock:
    """The run's reader-writer lock over mesh-wide state (shared by all processes of a run)."""
    return MeshLock(f"{cluster.kube.server}|{cluster.handle.context}")


@pytest.fixture(autouse=True)
def _mesh_shared(request: pytest.FixtureRequest) -> Iterator[None]:
    """Lab tests hold the mesh lock shared, so no mesh-wide change happens under them; one
    that follows another worker's reinstall reads the gateways' Service again first."""
    if request.node.get_closest_marker("lab") is None:
        yield
        return
    lock: MeshLock = request.getfixturevalue("mesh_lock")
    with lock.shared():
        if lock.news():
            request.getfixturevalue("cluster").gateways_may_have_changed()
        yield


@pytest.fixture(scope="module")
def mesh_wide(istio: IstioInstallation, mesh_lock: MeshLock, istio_settings: Settings,
              lab_namespace: str) -> Iterator[MeshWide]:
    """Make mesh-wide changes (``reinstall``, ``set_mesh_config``), restored at module end.

    Holds the mesh lock exclusively for the module (taken after the module's namespace and
    ingress lock, so locks are always taken in one order). Skipped with ``--istio-read-only``.
    """
    if istio_settings.read_only:
        pytest.skip("changes mesh-wide state, and --istio-read-only is set")
    with mesh_lock.exclusive():
        changes = MeshWide(istio, on_reinstall=mesh_lock.count_change)
        try:
            yield changes
        finally:
            with _clear_errors():
                changes.restore()


@pytest.fixture
def check_ids(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The catalogue check IDs the current test covers (from its ``check`` marker)."""
    return tuple(i for m in request.node.iter_markers("check") for i in m.args)


def _module_label(request: pytest.FixtureRequest) -> str:
    """``test_lab03_traffic_management`` -> ``lab03-traffic-management`` (one per module)."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    return re.sub(r"[^a-z0-9-]", "-", module.lower().removeprefix("test_"))[:50].strip("-")


def _should_remove(request: pytest.FixtureRequest, settings: Settings) -> bool:
    if settings.keep == "always":
        return False
    if settings.keep == "on-failure":
        return not reporting.failed_under(request.config, request.node.nodeid)
    return True


