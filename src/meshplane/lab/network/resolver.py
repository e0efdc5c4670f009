"""A pod's resolver files: `/etc/netns/NAME/hosts` and `resolv.conf`.

`ip netns exec NAME` bind-mounts every file of `/etc/netns/NAME` over the one of the same name in
`/etc`, so a process started that way reads the pod's hosts file and search domains
(`NS.svc.cluster.local svc.cluster.local cluster.local`, Kubernetes' ClusterFirst). No nameserver
is written unless one is given, so a name the hosts file lacks is looked up only on the pod's own
loopback (glibc's default) and never outside the machine. The folder and both files are recorded
in the ledger before they are written.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from meshplane.lab.network import ledger as ledgers

ETC_NETNS = Path("/etc/netns")


def search_domains(namespace: str, domain: str = "cluster.local") -> list[str]:
    return [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]


def hosts_text(pod_ip: str, hostname: str, extra: Sequence[tuple[str, Sequence[str]]] = ()) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", f"{pod_ip}\t{hostname}"]
    lines += [f"{ip}\t{' '.join(hostnames)}" for ip, hostnames in extra]
    return "\n".join(lines) + "\n"


def resolv_text(namespace: str, nameservers: Sequence[str] = (), domain: str = "cluster.local") -> str:
    lines = [f"search {' '.join(search_domains(namespace, domain))}", "options ndots:5"]
    lines += [f"nameserver {ns}" for ns in nameservers]
    return "\n".join(lines) + "\n"


def rewrite_hosts(
    netns: str,
    *,
    pod_ip: str,
    hostname: str,
    extra_hosts: Sequence[tuple[str, Sequence[str]]] = (),
    root: Path = ETC_NETNS,
) -> None:
    """Rewrite the pod's recorded `hosts` file IN PLACE (blocking): a running process of the pod
    has that very file (inode) bind-mounted on its /etc/hosts, so a new file renamed over it
    would never be seen. One write of the whole text; the file was recorded by `write`."""
    text = hosts_text(pod_ip, hostname, extra_hosts).encode()
    fd = os.open(root / netns / "hosts", os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, text)
    finally:
        os.close(fd)


async def write(
    ledger: ledgers.Ledger,
    netns: str,
    *,
    namespace: str,
    pod_ip: str,
    hostname: str,
    extra_hosts: Sequence[tuple[str, Sequence[str]]] = (),
    nameservers: Sequence[str] = (),
    root: Path = ETC_NETNS,
) -> Path:
    """Write the pod's `hosts` and `resolv.conf` under `root/netns`; return that folder."""
    folder = root / netns
    files = {
        folder / "hosts": hosts_text(pod_ip, hostname, extra_hosts),
        folder / "resolv.conf": resolv_text(namespace, nameservers),
    }
    await ledger.record(ledgers.Entry("dir", str(folder)))
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    for path, text in files.items():
        await ledger.record(ledgers.Entry("file", str(path)))
        await asyncio.to_thread(path.write_text, text)
    return folder
