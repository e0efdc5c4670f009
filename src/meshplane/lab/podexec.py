"""`meshplane lab exec … POD -- COMMAND…` in netns mode: any command, run inside the pod's network
namespace as `kubectl exec` runs it in the pod: as the container's user (`-c`, else the first
container), with the pod's /etc/hosts and resolv.conf (`ip netns exec` mounts the pod's
`/etc/netns/NS/`), so `curl -sS helloworld.sample:5000/hello` is the real curl, unmodified, its
traffic captured by the pod's iptables like any app's. The environment is only PATH, LANG,
HOSTNAME (the pod's name) and HOME: no proxy settings of the host's.

(Loopback mode has no pod network to enter; there `execreq` sends one curl request on the pod's
behalf.)
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from meshplane.lab import errors
from meshplane.lab.network import names
from meshplane.lab.network import plan as plans
from meshplane.lab.node import podnet, podspec


@dataclass(frozen=True, slots=True)
class Done:
    code: int
    out: bytes
    err: bytes


def container_of(pod: dict[str, Any], name: str | None) -> dict[str, Any]:
    """The container `name` (else the first); ContainerConfigError names the valid ones."""
    found = podspec.containers(pod)
    if name is None and found:
        return found[0]
    for c in found:
        if c.get("name") == name:
            return c
    listed = ", ".join(str(c.get("name")) for c in found)
    raise errors.ContainerConfigError(
        f"container {name} is not valid for pod {podspec.meta(pod).get('name')} (containers: {listed})"
    )


def argv(
    plan: plans.NetworkPlan, pod: dict[str, Any], container: str | None, command: list[str]
) -> list[str]:
    if not command:
        raise errors.ContainerConfigError("no command given (lab exec … POD -- COMMAND …)")
    if not (pod.get("status") or {}).get("podIP"):
        raise errors.ContainerConfigError(f'pod "{podspec.meta(pod).get("name")}" has no network yet')
    netns = names.netns(plan.lab_id, str(podspec.meta(pod).get("uid")))
    return [*podnet.exec_prefix(netns, pod, container_of(pod, container)), *command]


def env(pod: dict[str, Any]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": "/root",
        "HOSTNAME": str(podspec.meta(pod).get("name") or ""),
    }


async def run(
    plan: plans.NetworkPlan,
    pod: dict[str, Any],
    container: str | None,
    command: list[str],
    timeout: float = 60.0,  # noqa: ASYNC109 -- a subprocess deadline
) -> Done:
    """Run `command` in the pod and collect its output (what `lab verify` does with curl)."""
    proc = await asyncio.create_subprocess_exec(
        *argv(plan, pod, container, command),
        env=env(pod),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Done(124, b"", f"timed out after {timeout:g}s".encode())
    return Done(proc.returncode or 0, out, err)
