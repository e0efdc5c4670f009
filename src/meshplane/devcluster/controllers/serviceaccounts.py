"""Service-account machinery Kubernetes runs beside the API server.

- the legacy token controller: Secrets of type kubernetes.io/service-account-token get `token`,
  `ca.crt` and `namespace`, and go away with their ServiceAccount;
- the ServiceAccount controller: a `default` ServiceAccount in every namespace;
- the root-CA publisher: the `kube-root-ca.crt` ConfigMap in every namespace;
- the ServiceAccount admission plugin (`admit_pod`): pods get `serviceAccountName` defaulted and
  the `kube-api-access-*` projected volume mounted, as in Kubernetes.

The controllers follow store events after one full pass, and are idempotent: replaying any
event, or the whole pass, converges on the same objects.
"""

from __future__ import annotations

import base64
import copy
import logging
import secrets
from typing import Any, Protocol

from meshplane.devcluster import errors, seams
from meshplane.devcluster.auth import tokens
from meshplane.devcluster.controllers import objects
from meshplane.devcluster.schema import resources
from meshplane.devcluster.storage import store
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)
DEFAULT_SA = "default"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_KEYS = ("namespaces", "serviceaccounts", "secrets", "configmaps")


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _annotations(obj: Obj) -> Obj:
    a = _meta(obj).get("annotations")
    return a if isinstance(a, dict) else {}


# the ServiceAccount admission plugin (plugin/pkg/admission/serviceaccount)


def token_volume(name: str) -> Obj:
    return {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }


class Reader(Protocol):
    def peek(self, key: str, namespace: str, name: str) -> Obj | None: ...


def admit_pod(request: seams.AdmissionRequest, obj: Obj, reader: Reader) -> Obj:
    """Default a created Pod's service account and mount its API credentials (mirror pods aside).

    Unlike Kubernetes, a Pod naming a ServiceAccount that does not exist (yet) is not refused."""
    if (
        request.api_group
        or request.resource != "pods"
        or request.subresource
        or request.operation != "CREATE"
    ):
        return obj
    if "kubernetes.io/config.mirror" in _annotations(obj):
        return obj
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    out = copy.deepcopy(obj)
    spec = out["spec"]
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_SA
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    automount = spec.get("automountServiceAccountToken")
    sa = reader.peek("serviceaccounts", request.namespace, name)
    if automount is None and sa is not None:
        automount = sa.get("automountServiceAccountToken")
    if automount is False:
        return out
    containers = [
        c
        for group in ("initContainers", "containers")
        for c in (spec.get(group) or [])
        if isinstance(c, dict)
    ]
    needs = [
        c
        for c in containers
        if not any(
            isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH
            for m in c.get("volumeMounts") or []
        )
    ]
    if not needs:
        return out
    vol = "kube-api-access-" + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
    spec.setdefault("volumes", []).append(token_volume(vol))
    for c in needs:
        c.setdefault("volumeMounts", []).append(
            {"name": vol, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
        )
    return out


# the controllers


class ServiceAccountControllers:
    """Token Secrets, default ServiceAccounts and kube-root-ca.crt, with the cluster's lifetime."""

    def __init__(
        self,
        api: objects.ObjectApi,
        registry: resources.Registry,
        key: tokens.SigningKey,
        ca_pem: bytes,
        cluster: str = "",
    ) -> None:
        self._api = api
        self._store = api.store
        self._registry = registry
        self._key = key
        self._ca_pem = ca_pem
        self._cluster = cluster

    def _rt(self, plural: str) -> resources.ResourceType:
        rt = self._registry.lookup("", "v1", plural)
        if rt is None:
            raise RuntimeError(f"core/v1 {plural} is not served")
        return rt

    async def run(self) -> None:
        """Reconcile everything, then follow events until cancelled (resyncing after an overflow)."""
        while True:
            sub = self._store.subscribe(set(_KEYS))
            try:
                await self.resync()
                async for ev in sub:
                    await self._guarded(self._on_event(ev))
            finally:
                sub.close()
            log.warning("event queue overflowed, resyncing cluster=%s", self._cluster)

    async def resync(self) -> None:
        for ns in list(self._store.items("namespaces")):
            await self._guarded(self._namespace(ns))
        for secret in list(self._store.items("secrets")):
            await self._guarded(self._token_secret(secret))

    async def _guarded(self, coro: Any) -> None:
        try:
            await coro
        except errors.ApiError as e:
            # a concurrent write or a namespace being deleted: the next event settles it
            log.debug(
                "sa controllers: write skipped cluster=%s code=%s reason=%s", self._cluster, e.code, e.message
            )
        except Exception:  # one malformed object must not stop the controllers
            log.exception("sa controllers: object skipped cluster=%s", self._cluster)

    async def _on_event(self, ev: store.Event) -> None:
        meta = _meta(ev.obj)
        ns, name = meta.get("namespace", "") or "", meta.get("name", "")
        if ev.key == "namespaces":
            if ev.type != store.DELETED:
                await self._namespace(ev.obj)
        elif ev.key == "serviceaccounts":
            if ev.type == store.DELETED:
                await self._sa_deleted(ev.obj)
                if name == DEFAULT_SA:
                    await self._ensure_default_sa(ns)
            else:
                for secret in list(self._store.items("secrets", ns)):
                    if _annotations(secret).get(SA_NAME_ANNOTATION) == name:
                        await self._token_secret(secret)
        elif ev.key == "secrets":
            if ev.type != store.DELETED:
                await self._token_secret(ev.obj)
        elif ev.key == "configmaps" and name == ROOT_CA_CONFIGMAP:
            await self._ensure_root_ca(ns)

    async def _namespace(self, ns_obj: Obj) -> None:
        meta = _meta(ns_obj)
        if meta.get("deletionTimestamp"):
            return
        name = str(meta.get("name", ""))
        await self._ensure_default_sa(name)
        await self._ensure_root_ca(name)

    async def _ensure_default_sa(self, namespace: str) -> None:
        ns = self._store.peek("namespaces", "", namespace)
        if ns is None or _meta(ns).get("deletionTimestamp"):
            return
        if self._store.peek("serviceaccounts", namespace, DEFAULT_SA) is None:
            sa = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": DEFAULT_SA, "namespace": namespace},
            }
            await self._api.create(self._rt("serviceaccounts"), sa)
            log.info("created default serviceaccount cluster=%s namespace=%s", self._cluster, namespace)

    async def _ensure_root_ca(self, namespace: str) -> None:
        ns = self._store.peek("namespaces", "", namespace)
        if ns is None or _meta(ns).get("deletionTimestamp"):
            return
        want = self._ca_pem.decode()
        cm = self._store.peek("configmaps", namespace, ROOT_CA_CONFIGMAP)
        if cm is None:
            new: Obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": ROOT_CA_CONFIGMAP,
                    "namespace": namespace,
                    "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
                },
                "data": {"ca.crt": want},
            }
            await self._api.create(self._rt("configmaps"), new)
            return
        if _meta(cm).get("deletionTimestamp") or (cm.get("data") or {}) == {"ca.crt": want}:
            return
        fixed = copy.deepcopy(cm)
        fixed["data"] = {"ca.crt": want}
        fixed.pop("binaryData", None)
        rv = int(_meta(cm)["resourceVersion"])
        await self._api.update(self._rt("configmaps"), fixed, expected_rv=rv)

    async def _token_secret(self, secret: Obj) -> None:
        """Fill a token Secret, or delete it when its ServiceAccount is gone (tokens_controller.go)."""
        if secret.get("type") != TOKEN_TYPE:
            return
        meta = _meta(secret)
        if meta.get("deletionTimestamp"):
            return
        annotations = _annotations(secret)
        sa_name = annotations.get(SA_NAME_ANNOTATION)
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if not isinstance(sa_name, str) or not sa_name:
            return
        sa = self._store.peek("serviceaccounts", ns, sa_name)
        want_uid = annotations.get(SA_UID_ANNOTATION)
        if sa is None or (want_uid and want_uid != _meta(sa).get("uid")):
            await self._api.delete(self._rt("secrets"), ns, name, objects.DeleteOptions(uid=meta.get("uid")))
            log.info(
                "deleted token secret of missing serviceaccount cluster=%s secret=%s/%s",
                self._cluster,
                ns,
                name,
            )
            return
        raw_data = secret.get("data")
        data: Obj = raw_data if isinstance(raw_data, dict) else {}
        needs_token = not data.get("token")
        filled = data.get("ca.crt") == _b64(self._ca_pem) and data.get("namespace") == _b64(ns)
        if not needs_token and filled and want_uid:
            return
        fixed = copy.deepcopy(secret)
        fdata: Obj = dict(data)
        fixed["data"] = fdata
        if needs_token:
            fdata["token"] = _b64(self._key.sign(tokens.legacy_claims(sa, name)))
        fdata["ca.crt"] = _b64(self._ca_pem)
        fdata["namespace"] = _b64(ns)
        fixed["metadata"]["annotations"] = {**annotations, SA_UID_ANNOTATION: _meta(sa).get("uid", "")}
        rv = int(meta["resourceVersion"])
        await self._api.update(self._rt("secrets"), fixed, expected_rv=rv)
        log.info(
            "filled token secret cluster=%s secret=%s/%s serviceaccount=%s", self._cluster, ns, name, sa_name
        )

    async def _sa_deleted(self, sa: Obj) -> None:
        meta = _meta(sa)
        ns, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
        for secret in list(self._store.items("secrets", ns)):
            ann = _annotations(secret)
            if secret.get("type") != TOKEN_TYPE or ann.get(SA_NAME_ANNOTATION) != name:
                continue
            if ann.get(SA_UID_ANNOTATION) not in (None, "", uid):
                continue
            smeta = _meta(secret)
            await self._guarded(
                self._api.delete(
                    self._rt("secrets"), ns, smeta["name"], objects.DeleteOptions(uid=smeta.get("uid"))
                )
            )
