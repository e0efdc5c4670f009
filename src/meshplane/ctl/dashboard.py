"""Finding the mesh console of a control plane, for `meshplane dashboard` (as `istioctl dashboard`
finds its target: the running `app=istiod` pods, or the URL given).

The console lives on the monitoring port (15014) under `/console/`; a control plane is usable when
`/console/api/clusters` answers there. In the lab the pod IPs are reachable from the host, so the
pod's address is the URL; on a cluster whose pods are not, give `--istiod-url` (for example after a
`kubectl port-forward` of 15014, which meshplane does not run for you).
"""

from __future__ import annotations

import aiohttp

from meshplane.ctl import debugclient, errors

CONSOLE_PATH = "/console/"


async def console_urls(
    urls: list[str], kubeconfig: str | None, context: str | None, namespace: str, within: float = 5.0
) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, console URL) of every control plane whose console answers, and why the others did not."""
    found = await debugclient.targets(urls, kubeconfig, context, namespace)
    ok: list[tuple[str, str]] = []
    problems: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session:
        for label, base in found:
            probe = base.rstrip("/") + "/console/api/clusters"
            try:
                async with session.get(probe) as r:
                    if r.status != 200:
                        problems.append(f"{probe}: HTTP {r.status}")
                        continue
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                problems.append(f"{probe}: {e or type(e).__name__}")
                continue
            ok.append((label, base.rstrip("/") + CONSOLE_PATH))
    if not ok and not problems:
        raise errors.SyncStatusError("no control plane found")
    return ok, problems
