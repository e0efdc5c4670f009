"""API semantics over the store: namespaces, generateName, ClusterIPs, finalizers, graceful deletion.

The REST handlers call these after decoding, validation and admission; controllers (GC, CRDs,
the token controller) may call them too so that their writes follow the same rules.
"""

from __future__ import annotations

import copy
import logging
import secrets
from dataclasses import dataclass

from meshplane.devcluster import errors
from meshplane.devcluster.schema import defaults, resources
from meshplane.devcluster.storage import meta, store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None  # Background Foreground Orphan
    uid: str | None = None
    resource_version: int | None = None


class ObjectApi:
    def __init__(self, st: store.Store, clock: clock_mod.Clock, service_ips: defaults.ServiceIPs) -> None:
        self.store = st
        self.clock = clock
        self.service_ips = service_ips

    def check_namespace(
        self, rt: resources.ResourceType, namespace: str, name: str, *, creating: bool
    ) -> None:
        """404 for a missing namespace; 403 for creating in one being terminated."""
        if not rt.namespaced:
            return
        ns = self.store.peek("namespaces", "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise errors.ApiError(
                403,
                f'{resources_name(rt)} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                "Forbidden",
                name=name,
                group=rt.group,
                kind=rt.plural,
                causes=[
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            )

    async def create(self, rt: resources.ResourceType, obj: Obj, *, dry_run: bool = False) -> Obj:
        md = obj.setdefault("metadata", {})
        ns = md.get("namespace", "") if rt.namespaced else ""
        if not rt.namespaced:
            md.pop("namespace", None)
        self.check_namespace(rt, ns, md.get("name") or md.get("generateName", ""), creating=True)
        md.pop("resourceVersion", None)
        if rt.key == "apiextensions.k8s.io/customresourcedefinitions":
            fins = md.setdefault("finalizers", [])
            if CRD_CLEANUP not in fins:
                fins.append(CRD_CLEANUP)
        generate = not md.get("name") and md.get("generateName")
        for attempt in range(5):
            if generate:
                md["name"] = md["generateName"] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
            ip = self._allocate_ip(rt, obj)
            try:
                return await self.store.create(rt.key, obj, dry_run=dry_run)
            except errors.ApiError as e:
                if not (generate and e.code == 409 and attempt < 4):
                    raise
            finally:
                if ip:
                    self.service_ips.release(ip)
        raise AssertionError("unreachable")

    def _allocate_ip(self, rt: resources.ResourceType, obj: Obj) -> str:
        if rt.key != "services":
            return ""
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
            return ""
        want = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
        if want == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return ""
        used = [(s.get("spec") or {}).get("clusterIP", "") for s in self.store.items("services")]
        if want:
            self.service_ips.reserve(want, used, obj["metadata"].get("name", ""))
            ip = str(want)
        else:
            ip = self.service_ips.allocate(used)
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        return ip

    async def update(
        self, rt: resources.ResourceType, obj: Obj, *, expected_rv: int | None = None, dry_run: bool = False
    ) -> Obj:
        if rt.key == "services":
            self._check_cluster_ip_unchanged(obj)
        return await self.store.update(rt.key, obj, expected_rv=expected_rv, dry_run=dry_run)

    def _check_cluster_ip_unchanged(self, obj: Obj) -> None:
        md = obj["metadata"]
        old = self.store.peek("services", md.get("namespace", "") or "", md.get("name", ""))
        if old is None:
            return
        before = (old.get("spec") or {}).get("clusterIP")
        after = (obj.get("spec") or {}).get("clusterIP")
        if before and after and before != after and (obj.get("spec") or {}).get("type") != "ExternalName":
            raise errors.invalid(
                "Service",
                "",
                md.get("name", ""),
                [
                    (
                        "FieldValueInvalid",
                        "spec.clusterIPs[0]",
                        f'Invalid value: []string{{"{after}"}}: may not change once set',
                    )
                ],
            )

    async def delete(
        self,
        rt: resources.ResourceType,
        namespace: str,
        name: str,
        opts: DeleteOptions,
        *,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Delete or mark for deletion. Returns (object, gone now)."""
        key = rt.key
        obj = self.store.peek(key, namespace, name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        md = obj["metadata"]
        if opts.uid is not None and md.get("uid") != opts.uid:
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {opts.uid}, UID in object meta: {md.get('uid')}",
            )
        if opts.resource_version is not None and int(md["resourceVersion"]) != opts.resource_version:
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {opts.resource_version}, "
                f"ResourceVersion in object meta: {md['resourceVersion']}",
            )
        new = copy.deepcopy(obj)
        nmeta = new["metadata"]
        fins: list[str] = list(nmeta.get("finalizers") or [])
        if opts.propagation == "Foreground" and FOREGROUND not in fins:
            fins.append(FOREGROUND)
        elif opts.propagation == "Orphan" and ORPHAN not in fins:
            fins.append(ORPHAN)
        grace = self._pod_grace(rt, obj, opts.grace_period)
        now = self.clock.wall()
        if grace > 0:
            until = rfc3339.format(now + grace)
            old_grace = nmeta.get("deletionGracePeriodSeconds")
            if nmeta.get("deletionTimestamp") and old_grace is not None and old_grace <= grace:
                return copy.deepcopy(obj), False
            nmeta["deletionTimestamp"], nmeta["deletionGracePeriodSeconds"] = until, grace
            nmeta["finalizers"] = fins
            if not fins:
                nmeta.pop("finalizers")
            return await self._mark(rt, new, obj, dry_run), False
        if key == "namespaces":
            new.setdefault("status", {})["phase"] = "Terminating"
        if fins or meta.finalizers_pending(key, new):
            if (
                nmeta.get("deletionTimestamp")
                and fins == list(md.get("finalizers") or [])
                and (key != "namespaces" or (obj.get("status") or {}).get("phase") == "Terminating")
            ):
                return copy.deepcopy(obj), False
            nmeta.setdefault("deletionTimestamp", rfc3339.format(now))
            nmeta["deletionGracePeriodSeconds"] = 0
            nmeta["finalizers"] = fins
            if not fins:
                nmeta.pop("finalizers")
            return await self._mark(rt, new, obj, dry_run), False
        gone = await self.store.delete(key, namespace, name, expected_uid=md.get("uid"), dry_run=dry_run)
        return gone, True

    async def _mark(self, rt: resources.ResourceType, new: Obj, old: Obj, dry_run: bool) -> Obj:
        if dry_run:
            return new
        marked = await self.store.update(rt.key, new, expected_rv=int(old["metadata"]["resourceVersion"]))
        # store.update keeps an existing deletionTimestamp; a newly set one must be written here
        return marked

    def _pod_grace(self, rt: resources.ResourceType, obj: Obj, requested: int | None) -> int:
        if rt.key != "pods":
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(0, requested)
        return int(spec.get("terminationGracePeriodSeconds", 30) or 0)

    async def delete_collection(
        self, rt: resources.ResourceType, objs: list[Obj], opts: DeleteOptions, *, dry_run: bool = False
    ) -> list[Obj]:
        """Objects without finalizers (or pod grace) go in one transaction; the others are marked."""
        immediate: list[tuple[str, str]] = []
        out: list[Obj] = []
        for obj in objs:
            m = obj["metadata"]
            ns, name = m.get("namespace", "") or "", m["name"]
            needs_mark = (
                m.get("finalizers")
                or opts.propagation in ("Foreground", "Orphan")
                or self._pod_grace(rt, obj, opts.grace_period) > 0
                or rt.key in ("namespaces", "apiextensions.k8s.io/customresourcedefinitions")
            )
            if needs_mark:
                continue
            immediate.append((ns, name))
        out.extend(await self.store.delete_many(rt.key, immediate, dry_run=dry_run))
        done = set(immediate)
        for obj in objs:
            m = obj["metadata"]
            ns, name = m.get("namespace", "") or "", m["name"]
            if (ns, name) in done:
                continue
            try:
                marked, _gone = await self.delete(rt, ns, name, opts, dry_run=dry_run)
                out.append(marked)
            except errors.ApiError as e:
                if e.code != 404:
                    raise
        return out


def resources_name(rt: resources.ResourceType) -> str:
    return errors.qualified(rt.plural, rt.group)
