"""A lab Pod's status from what its worker knows: phase, IPs, conditions and container statuses
in the shape the kubelet writes them (kubectl's READY and STATUS columns read these fields)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from meshplane.runtime.jsonobj import Obj


@dataclass(slots=True)
class ContainerState:
    name: str
    image: str
    init: bool = False
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    ever_started: bool = False
    pid: int | None = None
    program: str = ""
    not_ready_message: str = ""  # e.g. an unsupported probe

    def waiting(self, reason: str, message: str = "") -> None:
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        self.ready = self.started = False

    def running(self, started_at: str, pid: int) -> None:
        self.state = {"running": {"startedAt": started_at}}
        self.started = self.ever_started = True
        self.pid = pid

    def terminated(self, code: int, finished_at: str, message: str = "") -> None:
        started_at = (self.state.get("running") or {}).get("startedAt", finished_at)
        term: Obj = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started_at,
            "finishedAt": finished_at,
        }
        if message:
            term["message"] = message
        self.state = {"terminated": term}
        self.ready = self.started = False
        self.pid = None

    @property
    def is_running(self) -> bool:
        return "running" in self.state

    @property
    def succeeded(self) -> bool:
        return (self.state.get("terminated") or {}).get("exitCode") == 0

    def status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": f"meshplane-lab://{self.program}" if self.program else "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.pid is not None:
            out["containerID"] = f"lab://{self.pid}"
        return out


@dataclass(slots=True)
class PodState:
    pod_ip: str = ""
    host_ip: str = ""
    start_time: str = ""
    sandbox_ready: bool = False
    sandbox_message: str = ""  # why containers cannot be created yet (a missing ConfigMap …)
    init_done: bool = False
    init_failed: bool = False
    terminating: bool = False
    restart_policy: str = "Always"
    inits: list[ContainerState] = field(default_factory=list)
    containers: list[ContainerState] = field(default_factory=list)


def phase(s: PodState) -> str:
    if s.init_failed:
        return "Failed"
    if not s.init_done or not s.containers or any(not c.ever_started for c in s.containers):
        return "Pending"
    if s.restart_policy == "Always" or not all("terminated" in c.state for c in s.containers):
        return "Running"
    if all(c.succeeded for c in s.containers):
        return "Succeeded"
    return "Failed" if s.restart_policy == "Never" else "Running"


def _cond(ctype: str, ok: bool, now: str, old: Sequence[Obj], reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    prev = next((c for c in old if isinstance(c, dict) and c.get("type") == ctype), None)
    since = prev.get("lastTransitionTime") if prev is not None and prev.get("status") == status else None
    out: Obj = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": since or now}
    if not ok and reason:
        out["reason"] = reason
    if not ok and message:
        out["message"] = message
    return out


def build(s: PodState, now: str, old_status: Obj) -> Obj:
    """The status to write; transition times are kept from `old_status` while a condition holds."""
    old = [c for c in old_status.get("conditions") or [] if isinstance(c, dict)]
    unready = [c.name for c in s.containers if not c.ready]
    notes = [c.not_ready_message for c in s.containers if c.not_ready_message and not c.ready]
    containers_ready = not unready and not s.terminating and bool(s.containers)
    ready_msg = f"containers with unready status: [{' '.join(unready)}]" if unready else ""
    if notes:
        ready_msg = "; ".join([ready_msg, *notes]) if ready_msg else "; ".join(notes)
    if s.terminating and not unready:
        ready_msg = "the pod is terminating"
    pending_init = [c.name for c in s.inits if not c.succeeded]
    conditions = [
        _cond("PodReadyToStartContainers", s.sandbox_ready, now, old),
        _cond(
            "Initialized",
            s.init_done,
            now,
            old,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(pending_init)}]",
        ),
        _cond("Ready", containers_ready, now, old, "ContainersNotReady", ready_msg),
        _cond("ContainersReady", containers_ready, now, old, "ContainersNotReady", ready_msg),
        _cond("PodScheduled", True, now, old),
    ]
    status: Obj = {
        "phase": phase(s),
        "conditions": conditions,
        "hostIP": s.host_ip or None,
        "hostIPs": [{"ip": s.host_ip}] if s.host_ip else None,
        "podIP": s.pod_ip or None,
        "podIPs": [{"ip": s.pod_ip}] if s.pod_ip else None,
        "startTime": s.start_time or None,
        "containerStatuses": [c.status() for c in s.containers],
    }
    if s.inits:
        status["initContainerStatuses"] = [c.status() for c in s.inits]
    if s.sandbox_message and not s.sandbox_ready:
        status["message"] = s.sandbox_message
    else:
        status["message"] = None
    return status
