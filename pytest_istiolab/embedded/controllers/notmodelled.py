"""Events (and Gateway API status) for what the embedded cluster stores but does not model.

For every object of a kind or with a field listed in :mod:`..unmodelled`, one ``Warning``
Event ``NotModelled`` per note and generation (``kubectl describe`` and ``kubectl events``
show them). A Gateway API ``Gateway`` gets ``Accepted`` and ``Programmed`` conditions
``False`` with reason ``NotModelled``, so ``kubectl get``/``describe`` shows why it is not
programmed (``kubectl wait --for=condition=programmed`` still waits for its ``--timeout``:
kubectl only stops early for a condition that becomes ``True``).
"""

from __future__ import annotations

from .. import unmodelled
from ..runtime import Runtime
from ..store import StoreError
from .events import EventRecorder
from .util import Obj, now


class NotModelled:
    def __init__(self, runtime: Runtime, events: EventRecorder) -> None:
        self.rt = runtime
        self.events = events
        self._seen: set[tuple[str, str]] = set()

    @staticmethod
    def key(group: str, plural: str, name: str) -> str:
        return f"{group}/{plural}/{name}"

    def reconcile(self, ns: str, ref: str) -> None:
        group, plural, name = ref.split("/", 2)
        store = self.rt.store
        try:
            rt = store.resource_type(group, plural)
        except StoreError:
            return  # the CRD went away
        obj = store.try_get(rt, ns or None, name)
        if obj is None:
            return
        meta = obj["metadata"]
        # kinds without a generation (a ConfigMap) count each resourceVersion as a new spec
        mark = (str(meta.get("uid")), str(meta.get("generation") or meta.get("resourceVersion")))
        if mark not in self._seen:
            self._seen.add(mark)
            for note in unmodelled.notes(group, rt.kind, obj):
                self.events.record(obj, unmodelled.REASON, note.text, type_="Warning",
                                   component=unmodelled.COMPONENT)
        if unmodelled.is_gateway_api(group) and rt.kind == "Gateway":
            self._gateway_status(obj, int(meta.get("generation") or 1),
                                 lambda edit: store.mutate(rt, ns, name, edit))

    @staticmethod
    def _gateway_status(obj: Obj, generation: int, write) -> None:  # type: ignore[no-untyped-def]
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if (cond.get("type") == "Programmed" and cond.get("reason") == unmodelled.REASON
                    and cond.get("observedGeneration") == generation):
                return

        def edit(live: Obj) -> Obj:
            live.setdefault("status", {})["conditions"] = unmodelled.gateway_conditions(
                generation, now())
            return live

        try:
            write(edit)
        except StoreError:
            pass  # deleted meanwhile, or a schema that rejects the conditions
