"""The kubelet of a lab node: runs the Pods bound to it as local processes.

One `PodWorker` per Pod uid (see podworker.py for a Pod's life). What every container gets,
beyond the env its spec asks for:

| variable                         | value                                                        |
|----------------------------------|--------------------------------------------------------------|
| `HOSTNAME`                       | the pod's name (as a container's hostname)                   |
| `KUBERNETES_SERVICE_HOST/PORT`   | the dev cluster's API address (its cert covers 127.0.0.1)    |
| `POD_NAMESPACE` (unless set)     | the pod's namespace: the resolver's search domain            |
| `MESHPLANE_POD_ROOT`             | the container's root folder: in-pod paths resolve under it   |
| `MESHPLANE_HOSTS_FILE`           | the cluster's hosts file: Service names → ClusterIPs         |
| `MESHPLANE_LOCALHOST`            | the pod-local address (the pod's "localhost")                |
| `ISTIO_META_MESHPLANE_LOCALHOST` | the same, as proxy metadata (the agent hands it to Envoy)    |
| `ISTIO_META_INTERCEPTION_MODE`   | loopback mode only: `NONE`, replacing the injector's         |
|                                  | `REDIRECT`: loopback pods share the host's network, nothing  |
|                                  | is captured, so the sidecar gets the explicit-proxy layout   |
|                                  | (xds/proxyview.py). netns mode keeps the injector's value.   |
| `MESHPLANE_LISTEN_ADDRESS`       | where an app listens: the pod-local address when the pod has |
|                                  | an `istio-proxy` container, else the pod IP; netns mode:     |
|                                  | `0.0.0.0` (in the pod's own namespace, as in a real pod)     |

In netns mode the pod-local address is the pod's own 127.0.0.1, and every container process is
started inside the pod's network namespace (`podnet.exec_prefix`).

plus PATH, PYTHONPATH, VIRTUAL_ENV, LANG, LC_ALL, TZ and MESHPLANE_LOG_LEVEL from the node
runtime's own environment, and nothing else of the host's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from lightkube.resources.core_v1 import Pod

from meshplane.lab import addresses, kubeapi, watchcache
from meshplane.lab.node import podspec, podworker, process
from meshplane.lab.node import settings as settings_mod
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import jsonobj, podroot, resolve, tasks
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

PASSTHROUGH = ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TZ", "MESHPLANE_LOG_LEVEL")
LISTEN_ENV = "MESHPLANE_LISTEN_ADDRESS"
LOCALHOST_META_ENV = "ISTIO_META_MESHPLANE_LOCALHOST"
INTERCEPTION_META_ENV = "ISTIO_META_INTERCEPTION_MODE"
# The pod is an endpoint of a Service: True once no EndpointSlice lists it as ready any more.
EndpointsGate = Callable[[Obj], Awaitable[bool]]


class Kubelet:
    def __init__(
        self,
        api: kubeapi.Api,
        pods: watchcache.WatchCache,
        configmaps: watchcache.WatchCache,
        secrets: watchcache.WatchCache,
        settings: settings_mod.Settings,
        endpoints_gate: EndpointsGate,
        clock: clock_mod.Clock,
        cluster: str,
    ) -> None:
        self.api, self.pods, self.configmaps, self.secrets = api, pods, configmaps, secrets
        self.settings, self.endpoints_gate, self.clock, self.cluster = (
            settings,
            endpoints_gate,
            clock,
            cluster,
        )
        self.ips = addresses.PodIPs(settings.pod_cidr, loopback=settings.network is None)
        self.workers: dict[str, podworker.PodWorker] = {}
        self._started = False
        self._finalizing: set[str] = set()
        self._bg: set[asyncio.Task[Any]] = set()
        pods.add_handler(self._on_pod)
        configmaps.add_handler(lambda old, new: self._on_source("configmap", old, new))
        secrets.add_handler(lambda old, new: self._on_source("secret", old, new))

    def worker_of(self, namespace: str, name: str) -> podworker.PodWorker | None:
        """The worker of the Pod `namespace/name` on this node (the kubelet API's lookup)."""
        return next((w for w in self.workers.values() if (w.ns, w.name) == (namespace, name)), None)

    # lookups for workers ----------------------------------------------------------------------

    def configmap(self, ns: str, name: str) -> Obj | None:
        return self.configmaps.get(ns, name)

    def secret(self, ns: str, name: str) -> Obj | None:
        return self.secrets.get(ns, name)

    def env_sources(self) -> podspec.EnvSources:
        return podspec.EnvSources(self.configmap, self.secret, {"cpu": float(os.cpu_count() or 1)})

    def base_env(self, pod: Obj) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
        m, spec = podspec.meta(pod), podspec.spec(pod)
        api = self.settings.api_server
        env.update(
            {
                "HOSTNAME": str(spec.get("hostname") or m.get("name") or ""),
                "KUBERNETES_SERVICE_HOST": api.host,
                "KUBERNETES_SERVICE_PORT": str(api.port),
                "KUBERNETES_SERVICE_PORT_HTTPS": str(api.port),
                "KUBERNETES_PORT": f"tcp://{api.host}:{api.port}",
                resolve.NAMESPACE_ENV: str(m.get("namespace") or "default"),
            }
        )
        return env

    def lab_env(self, pod: Obj, pod_ip: str, local: str, root: Path) -> dict[str, str]:
        if self.settings.network is not None:  # the pod has its own network: as on a node
            return {
                podroot.ENV: str(root),
                resolve.HOSTS_FILE_ENV: str(self.settings.hosts_file),
                resolve.LOCALHOST_ENV: local,
                LOCALHOST_META_ENV: local,
                LISTEN_ENV: "0.0.0.0",
            }
        return {
            podroot.ENV: str(root),
            resolve.HOSTS_FILE_ENV: str(self.settings.hosts_file),
            resolve.LOCALHOST_ENV: local,
            LOCALHOST_META_ENV: local,
            INTERCEPTION_META_ENV: "NONE",
            LISTEN_ENV: local if podspec.has_sidecar(pod) else pod_ip,
        }

    def assign_ip(self, uid: str, previous: str) -> str:
        if previous and self.ips.claim(uid, previous):
            return previous
        return self.ips.allocate(uid)

    def release(self, uid: str) -> None:
        self.ips.release(uid)

    def forget(self, worker: podworker.PodWorker) -> None:
        """A terminated worker: drop it and stop its remaining tasks (status writer, refresher)."""
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]
        self._spawn(worker.close(), f"close/{worker.uid}")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = tasks.guarded(coro, f"kubelet/{self.cluster}/{name}")
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    # events -----------------------------------------------------------------------------------

    def _mine(self, pod: Obj) -> bool:
        return podspec.spec(pod).get("nodeName") == self.settings.node.name

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        if not self._started:
            return
        if new is None:
            assert old is not None
            w = self.workers.get(str(podspec.meta(old).get("uid")))
            if w is not None:
                w.gone()
            return
        if not self._mine(new):
            return
        uid = str(podspec.meta(new).get("uid"))
        w = self.workers.get(uid)
        if w is not None:
            w.update(new)
            return
        phase = (new.get("status") or {}).get("phase")
        if podspec.meta(new).get("deletionTimestamp"):
            if uid not in self._finalizing:  # not running here (e.g. a node runtime restart): finish it
                self._finalizing.add(uid)
                self._spawn(self._finalize(new), f"finalize/{uid}")
            return
        if phase in ("Succeeded", "Failed"):
            return
        w = podworker.PodWorker(self, new)
        self.workers[uid] = w
        w.start()

    async def _finalize(self, pod: Obj) -> None:
        m = podspec.meta(pod)
        await self.api.delete(Pod, str(m.get("name")), namespace=str(m.get("namespace")), grace=0)

    def _on_source(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old or {}
        ns, name = str(podspec.meta(obj).get("namespace")), str(podspec.meta(obj).get("name"))
        for w in self.workers.values():
            if w.ns == ns and uses(w.pod, kind, name):
                w.sources_changed()

    # run --------------------------------------------------------------------------------------

    async def run(self) -> None:
        killed = await asyncio.to_thread(process.sweep, self.settings.root / "pods")
        if killed:
            log.info("stopped processes left by a previous run %s", kv(cluster=self.cluster, pids=killed))
        for c in (self.pods, self.configmaps, self.secrets):
            await c.wait_synced()
        mine = [p for p in self.pods.items() if self._mine(p)]
        for p in mine:  # pods keep their IPs across a node runtime restart
            ip = str((p.get("status") or {}).get("podIP") or "")
            if ip:
                self.ips.claim(str(podspec.meta(p).get("uid")), ip)
        self._started = True
        for p in mine:
            self._on_pod(None, p)
        log.info("kubelet running %s", kv(cluster=self.cluster, node=self.settings.node.name, pods=len(mine)))
        await asyncio.Event().wait()

    async def stop(self) -> None:
        """Stop every process this kubelet started (the Pods stay in the API)."""
        self._started = False
        workers = list(self.workers.values())
        await asyncio.gather(
            *(w.shutdown(min(self.settings.shutdown_grace, _grace(w.pod))) for w in workers),
            return_exceptions=True,
        )
        self.workers.clear()
        for task in list(self._bg):
            await tasks.cancel(task)


def _grace(pod: Obj) -> float:
    g = podspec.spec(pod).get("terminationGracePeriodSeconds", 30)
    return float(g) if isinstance(g, int | float) else 30.0


def uses(pod: Obj, kind: str, name: str) -> bool:
    """The pod mounts that ConfigMap or Secret (directly or in a projected volume)."""
    key, field = ("configMap", "name") if kind == "configmap" else ("secret", "secretName")
    for vol in jsonobj.as_list(podspec.spec(pod).get("volumes")):
        if not isinstance(vol, dict):
            continue
        src = vol.get(key)
        if isinstance(src, dict) and src.get(field) == name:
            return True
        proj = vol.get("projected")
        if isinstance(proj, dict):
            for s in jsonobj.as_list(proj.get("sources")):
                inner = s.get(key) if isinstance(s, dict) else None
                if isinstance(inner, dict) and inner.get("name") == name:
                    return True
    return False
