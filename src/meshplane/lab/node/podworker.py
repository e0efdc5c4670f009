"""One Pod on the lab's node: its sandbox (IP, folder, volumes), init containers, containers as
processes with restarts and readiness probes, its status, and its termination.

Order of a Pod's life, as the kubelet's:
1. sandbox: a pod IP (and pod-local address), the pod folder, its volumes; a missing ConfigMap,
   Secret or token keeps the containers in ContainerCreating until it appears;
   in netns mode also its network namespace (`podnet`), in which every container runs;
2. init containers one after the other, each to a zero exit (failures restart with backoff, or
   fail the Pod with restartPolicy Never); traffic-capture init containers (istio-init's
   `istio-iptables`) run in netns mode, inside the pod's namespace as on a node, and are skipped
   and logged in loopback mode, where they would rewrite the host's iptables;
3. containers, each its own loop: start, probe readiness, on exit restart per restartPolicy with
   exponential backoff (CrashLoopBackOff); an image not in the table waits in ErrImagePull /
   ImagePullBackOff;
4. deletion (deletionTimestamp set): every container not ready, status written, the EndpointSlice
   controller publishes the endpoint as terminating (the kubelet waits for that, then a short
   `termination_delay`, the lab's stand-in for a preStop sleep), SIGTERM by PID, SIGKILL after the
   grace period, then the final delete with gracePeriodSeconds=0.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from lightkube.resources.core_v1 import Pod

from meshplane.lab import addresses, errors, kubeapi
from meshplane.lab.node import images, podspec, podstatus, probes, process, statuswriter, volumes
from meshplane.lab.node import settings as settings_mod
from meshplane.runtime import backoff as backoff_mod
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339, tasks
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

CAPTURE_SKIPPED = (
    "skipped by the lab in loopback mode: traffic capture (iptables) would change the host's network"
)


class PodHost(Protocol):
    """What a worker uses of its node. The kubelet implements it; this module never imports the
    kubelet, so the worker can be read and tested alone."""

    api: kubeapi.Api
    settings: settings_mod.Settings
    clock: clock_mod.Clock
    cluster: str
    endpoints_gate: Callable[[Obj], Awaitable[bool]]

    def configmap(self, ns: str, name: str) -> Obj | None: ...
    def secret(self, ns: str, name: str) -> Obj | None: ...
    def env_sources(self) -> podspec.EnvSources: ...
    def base_env(self, pod: Obj) -> dict[str, str]: ...
    def lab_env(self, pod: Obj, pod_ip: str, local: str, root: Path) -> dict[str, str]: ...
    def assign_ip(self, uid: str, previous: str) -> str: ...
    def release(self, uid: str) -> None: ...
    def forget(self, worker: PodWorker) -> None: ...


class PodWorker:
    def __init__(self, node: PodHost, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        m = podspec.meta(pod)
        self.uid, self.ns, self.name = str(m.get("uid")), str(m.get("namespace")), str(m.get("name"))
        self.id = f"{self.ns}/{self.name}"
        self.paths = volumes.PodPaths.of(node.settings.root, self.ns, self.name)
        spec = podspec.spec(pod)
        old = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        self.state = podstatus.PodState(
            restart_policy=str(spec.get("restartPolicy") or "Always"),
            inits=[
                podstatus.ContainerState(c["name"], str(c.get("image")), init=True)
                for c in podspec.containers(pod, "initContainers")
            ],
            containers=[
                podstatus.ContainerState(
                    c["name"],
                    str(c.get("image")),
                    restart_count=int((old.get(c["name"]) or {}).get("restartCount") or 0),
                )
                for c in podspec.containers(pod)
            ],
        )
        self.sources = volumes.Sources(node.configmap, node.secret)
        self.local = ""
        self.netns = ""  # netns mode: the pod's network namespace
        self.terminating = False
        self.done = asyncio.Event()
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()  # pod update or a volume source changed
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._group = tasks.TaskGroup(f"pod/{self.node.cluster}/{self.id}")
        self._refresher: asyncio.Task[None] | None = None
        self.status = statuswriter.StatusWriter(
            node.api,
            self.ns,
            self.name,
            lambda sent: podstatus.build(self.state, self.now(), sent),
            dict(pod.get("status") or {}),
            node.cluster,
        )

    # lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._group.start(self.status.run(), "status")
        self._group.start(self._run(), "run")

    def update(self, pod: Obj) -> None:
        self.pod = pod
        self._changed.set()
        if podspec.meta(pod).get("deletionTimestamp") and not self.terminating:
            self.terminating = True
            self._group.start(self._terminate(force=False), "terminate")

    def sources_changed(self) -> None:
        self._changed.set()

    def gone(self) -> None:
        """The Pod was removed from the API without us (force deletion, namespace deletion)."""
        if not self.terminating:
            self.terminating = True
            self._group.start(self._terminate(force=True), "terminate")

    async def shutdown(self, grace: float) -> None:
        """The node runtime stops: stop the processes, write nothing."""
        self._stopping.set()
        await asyncio.gather(
            *(process.stop(p, grace, f"{self.id}/{n}") for n, p in list(self._procs.items()))
        )
        await self._group.stop()

    async def close(self) -> None:
        self._stopping.set()
        await self._group.stop()

    def mark(self) -> None:
        self.status.mark()

    def container_names(self) -> list[str]:
        """The names of the pod's init and app containers (what logs and exec may name)."""
        return [c.name for c in [*self.state.inits, *self.state.containers]]

    def running(self, container: str) -> bool:
        """The container has a process now (a log follower and attach end when it has none)."""
        return container in self._procs

    def now(self) -> str:
        return rfc3339.format(self.node.clock.wall())

    async def _sleep(self, seconds: float) -> bool:
        """Wait `seconds` or until the pod stops; True when stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _until_change(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        self._changed.clear()

    # sandbox ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        await asyncio.to_thread(volumes.prepare, self.paths, self.uid)
        ip = self.node.assign_ip(self.uid, str((self.pod.get("status") or {}).get("podIP") or ""))
        self.state.pod_ip, self.state.host_ip = ip, self.node.settings.node.ip
        self.state.start_time = str((self.pod.get("status") or {}).get("startTime") or self.now())
        if self.node.settings.network is None:
            self.local = addresses.local_address(
                ip, self.node.settings.pod_cidr, self.node.settings.local_cidr
            )
        elif not await self._network(ip):
            return
        log.info(
            "pod sandbox %s",
            kv(cluster=self.node.cluster, pod=self.id, ip=ip, local=self.local, netns=self.netns),
        )
        self.mark()
        if not await self._volumes_ready():
            return
        self.state.sandbox_ready = True
        for c in self.state.containers:
            c.waiting("ContainerCreating")
        self.mark()
        self._refresher = self._group.start(self._refresh_volumes(), "volumes")
        if not await self._init_containers():
            return
        self.state.init_done = True
        self.mark()
        for cs in self.state.containers:
            self._group.start(self._container_loop(cs), f"container/{cs.name}")

    async def _network(self, ip: str) -> bool:
        """netns mode: the pod's network namespace, made (and retried with backoff) before anything
        runs in it; a failure is shown as the kubelet shows a failed sandbox."""
        network = self.node.settings.network
        assert network is not None
        backoff = backoff_mod.Backoff(initial=0.5, maximum=10.0, jitter=0.0)
        hostname = str(podspec.spec(self.pod).get("hostname") or self.name)
        while not self._stopping.is_set():
            try:
                self.netns = await network.setup(self.uid, self.ns, hostname, ip)
                self.local = "127.0.0.1"
                return True
            except errors.LabError as e:
                why = f"Failed to create pod sandbox: {e}"
                log.warning("pod sandbox failed %s", kv(cluster=self.node.cluster, pod=self.id, error=str(e)))
            for c in [*self.state.inits, *self.state.containers]:
                c.waiting("ContainerCreating", why)
            self.state.sandbox_message = why
            self.mark()
            if await self._sleep(backoff.next()):
                return False
        return False

    async def _volumes_ready(self) -> bool:
        backoff = backoff_mod.Backoff(initial=0.5, maximum=10.0, jitter=0.0)
        while not self._stopping.is_set():
            try:
                await self._fetch_tokens()
                rendered = volumes.render(self._env_pod(), self.sources)
                await asyncio.to_thread(volumes.write_all, self.paths, rendered)
                return True
            except errors.VolumeNotReady as e:
                why, reason = f"MountVolume.SetUp failed: {e}", "ContainerCreating"
            except errors.PodSpecError as e:
                why, reason = str(e), "CreateContainerConfigError"
            for c in [*self.state.inits, *self.state.containers]:
                c.waiting(reason, why)
            self.state.sandbox_message = why
            self.mark()
            await self._until_change(backoff.next())
        return False

    async def _fetch_tokens(self) -> None:
        now = self.node.clock.wall()
        sa = str(podspec.spec(self.pod).get("serviceAccountName") or "default")
        for want in volumes.token_wants(self.pod):
            key = (want.volume, want.path, want.audience, want.seconds)
            tok = self.sources.tokens.get(key)
            if tok is not None and not tok.due(now):
                continue
            try:
                token, expires = await self.node.api.token(
                    self.ns, sa, [want.audience] if want.audience else [], want.seconds, self.pod
                )
            except Exception as e:
                if tok is not None and now < tok.expires:
                    log.warning(
                        "token renewal failed %s", kv(cluster=self.node.cluster, pod=self.id, error=repr(e))
                    )
                    continue
                raise errors.VolumeNotReady(f'cannot get a token for service account "{sa}": {e}') from e
            self.sources.tokens[key] = volumes.Token(token, now, expires)

    async def _refresh_volumes(self) -> None:
        """Keep ConfigMaps, Secrets, downward API files and tokens current."""
        while not self._stopping.is_set():
            now = self.node.clock.wall()
            dues = [
                t.issued + volumes.TOKEN_REFRESH * (t.expires - t.issued)
                for t in self.sources.tokens.values()
            ]
            await self._until_change(max(1.0, min(dues, default=now + 60.0) - now))
            try:
                await self._fetch_tokens()
                rendered = volumes.render(self._env_pod(), self.sources)
                changed = await asyncio.to_thread(volumes.write_all, self.paths, rendered)
                if changed:
                    log.info(
                        "volumes updated %s",
                        kv(cluster=self.node.cluster, pod=self.id, volumes=",".join(changed)),
                    )
            except errors.LabError as e:
                log.warning(
                    "volume refresh failed %s", kv(cluster=self.node.cluster, pod=self.id, error=str(e))
                )

    def _env_pod(self) -> Obj:
        """The pod as the downward API sees it: with the IPs this node gave it."""
        pod = copy.deepcopy(self.pod)
        st = pod.setdefault("status", {})
        st["podIP"], st["hostIP"] = self.state.pod_ip, self.state.host_ip
        st["podIPs"], st["hostIPs"] = [{"ip": self.state.pod_ip}], [{"ip": self.state.host_ip}]
        return pod

    # containers -------------------------------------------------------------------------------

    def _spec_of(self, name: str, group: str) -> Obj:
        return next((c for c in podspec.containers(self.pod, group) if c.get("name") == name), {})

    async def _init_containers(self) -> bool:
        backoff = backoff_mod.Backoff(
            self.node.settings.backoff_initial, self.node.settings.backoff_max, jitter=0.0
        )
        for cs in self.state.inits:
            spec = self._spec_of(cs.name, "initContainers")
            if self.node.settings.network is None and podspec.is_traffic_capture(spec):
                log.info(
                    "skipping init container %s",
                    kv(cluster=self.node.cluster, pod=self.id, container=cs.name, why="traffic capture"),
                )
                cs.ever_started = True
                cs.terminated(0, self.now(), CAPTURE_SKIPPED)
                self.mark()
                continue
            while True:
                code = await self._run_once(cs, spec, backoff)
                if self._stopping.is_set():
                    return False
                if code == 0:
                    break
                if self.state.restart_policy == "Never":
                    self.state.init_failed = True
                    self.mark()
                    return False
                delay = backoff.next()
                cs.last_state = cs.state
                cs.waiting(
                    "CrashLoopBackOff",
                    f"back-off {delay:.0f}s restarting failed container={cs.name} pod={self.name}",
                )
                self.mark()
                if await self._sleep(delay):
                    return False
                cs.restart_count += 1
        return True

    async def _run_once(
        self, cs: podstatus.ContainerState, spec: Obj, backoff: backoff_mod.Backoff
    ) -> int | None:
        """Start the container (waiting with backoff while it cannot be) and wait for its exit."""
        while True:
            proc = await self._launch(cs, spec)
            if proc is not None:
                break
            if await self._image_backoff(cs, backoff):
                return None
        cs.running(self.now(), proc.pid)
        self._procs[cs.name] = proc
        self.mark()
        probe_task = None if cs.init else self._group.start(self._probe_loop(cs, spec), f"probe/{cs.name}")
        code = await proc.wait()
        self._procs.pop(cs.name, None)
        if probe_task is not None:
            await tasks.cancel(probe_task)
        cs.terminated(code, self.now())
        self.mark()
        log.info(
            "container exited %s", kv(cluster=self.node.cluster, pod=self.id, container=cs.name, code=code)
        )
        return code

    async def _image_backoff(self, cs: podstatus.ContainerState, backoff: backoff_mod.Backoff) -> bool:
        delay = backoff.next()
        waiting = cs.state.get("waiting") or {}
        self.mark()
        if waiting.get("reason") == "ErrImagePull":
            if await self._sleep(min(delay, 2.0)):
                return True
            cs.waiting(
                "ImagePullBackOff", f'Back-off pulling image "{cs.image}": {waiting.get("message", "")}'
            )
            self.mark()
        return await self._sleep(delay)

    async def _container_loop(self, cs: podstatus.ContainerState) -> None:
        backoff = backoff_mod.Backoff(
            self.node.settings.backoff_initial, self.node.settings.backoff_max, jitter=0.0
        )
        while not self._stopping.is_set():
            started = self.node.clock.monotonic()
            code = await self._run_once(cs, self._spec_of(cs.name, "containers"), backoff)
            if code is None or self._stopping.is_set():
                return
            policy = self.state.restart_policy
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return
            if self.node.clock.monotonic() - started > 2 * self.node.settings.backoff_max:
                backoff.reset()
            delay = backoff.next()
            cs.last_state = cs.state
            cs.waiting(
                "CrashLoopBackOff",
                f"back-off {delay:.0f}s restarting failed container={cs.name} "
                f"pod={self.name}_{self.ns}({self.uid})",
            )
            self.mark()
            if await self._sleep(delay):
                return
            cs.restart_count += 1

    async def _launch(self, cs: podstatus.ContainerState, spec: Obj) -> asyncio.subprocess.Process | None:
        s = self.node.settings
        entry = images.find(cs.image)
        try:
            if entry is None:
                images.launch_for(cs.image, [])  # raises UnknownImage with the message
                return None
            base = {**self.node.base_env(self.pod), **entry.env}
            env = podspec.container_env(self._env_pod(), spec, self.node.env_sources(), base)
            launch = images.launch_for(cs.image, podspec.args_of(spec, env), s.python)
        except errors.UnknownImage as e:
            cs.waiting("ErrImagePull", str(e))
            return None
        except errors.ContainerConfigError as e:
            cs.waiting("CreateContainerConfigError", str(e))
            return None
        except errors.PodSpecError as e:
            cs.waiting("CreateContainerError", str(e))
            return None
        argv = list(launch.argv)
        if s.network is not None:
            try:
                argv = [*s.network.exec_prefix(self.netns, self.pod, spec), *argv]
            except errors.ContainerConfigError as e:
                cs.waiting("CreateContainerConfigError", str(e))
                return None
        env.update(self.node.lab_env(self.pod, self.state.pod_ip, self.local, self.paths.root(cs.name)))
        root = await asyncio.to_thread(volumes.mount, self.paths, spec, s.hosts_file)
        cs.program = str(launch.program)
        proc = await process.spawn(argv, env, root, self.paths.log(cs.name), self.paths.pid(cs.name))
        log.info(
            "container started %s",
            kv(
                cluster=self.node.cluster,
                pod=self.id,
                container=cs.name,
                program=launch.program,
                pid=proc.pid,
            ),
        )
        return proc

    async def _probe_loop(self, cs: podstatus.ContainerState, spec: Obj) -> None:
        p = podspec.probe(spec)
        if p is None:
            cs.ready = not self.terminating
            self.mark()
            return
        if p.kind == "unsupported":
            cs.not_ready_message = p.message
            self.mark()
            return
        if await self._sleep(p.initial_delay):
            return
        ok_n = fail_n = 0
        while True:
            ok, message = await probes.check(p, self.state.pod_ip)
            ok_n, fail_n = (ok_n + 1, 0) if ok else (0, fail_n + 1)
            before = cs.ready
            if ok and ok_n >= p.success_threshold and not self.terminating:
                cs.ready, cs.not_ready_message = True, ""
            elif not ok and (fail_n >= p.failure_threshold or not cs.ready):
                cs.ready = False
                cs.not_ready_message = f"Readiness probe failed: {message}"
            if cs.ready != before or not ok:
                self.mark()
            period = p.period if cs.ready else min(p.period, self.node.settings.probe_until_ready)
            if await self._sleep(period):
                return

    # termination ------------------------------------------------------------------------------

    async def _terminate(self, force: bool) -> None:
        s = self.node.settings
        m = podspec.meta(self.pod)
        grace = m.get("deletionGracePeriodSeconds")
        if not isinstance(grace, int):
            grace = int(podspec.spec(self.pod).get("terminationGracePeriodSeconds", 30) or 0)
        log.info("pod terminating %s", kv(cluster=self.node.cluster, pod=self.id, grace=grace, force=force))
        self.state.terminating = True
        for c in [*self.state.containers]:
            c.ready = False
        if not force:
            await self.status.flush()
            listed = await self.node.endpoints_gate(self.pod)
            if listed and s.termination_delay > 0:
                await asyncio.sleep(s.termination_delay)
        self._stopping.set()
        procs = list(self._procs.items())
        await asyncio.gather(*(process.stop(p, float(grace), f"{self.id}/{n}") for n, p in procs))
        if not force:
            try:
                await self.node.api.delete(Pod, self.name, namespace=self.ns, grace=0)
            except Exception as e:
                log.warning(
                    "final pod delete failed %s", kv(cluster=self.node.cluster, pod=self.id, error=repr(e))
                )
        if s.network is not None:
            try:
                await s.network.remove(self.uid)
            except errors.LabError as e:  # lab down removes it by its ledger
                log.warning(
                    "pod network not removed %s", kv(cluster=self.node.cluster, pod=self.id, error=str(e))
                )
        self.node.release(self.uid)
        await tasks.cancel(self._refresher)  # a refresh in flight must not write the folder back
        await asyncio.to_thread(volumes.remove, self.paths)
        log.info("pod deleted %s", kv(cluster=self.node.cluster, pod=self.id))
        self.done.set()
        self.node.forget(self)
