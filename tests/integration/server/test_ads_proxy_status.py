"""`meshplane proxy-status` (the real CLI, as a subprocess) against a running discovery server."""

import asyncio
import json
import os
import sys
from pathlib import Path

from meshplane.xds import resources as R
from tests.support import stack, xdsclient
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[3]
CDS, LDS = R.TYPE_CDS, R.TYPE_LDS


async def meshplane(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshplane", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def node(pod: str, cluster: str) -> object:
    return xdsclient.make_node(
        xdsclient.sidecar_node_id(pod, "sample", "10.200.0.1"),
        {"CLUSTER_ID": cluster, "ISTIO_VERSION": "1.24.0"},
    )


async def test_proxy_status_table_and_json() -> None:
    async with stack.running(stack.sample_source()) as st:
        synced = xdsclient.XdsClient(st.target, node("synced", "cluster1"))  # type: ignore[arg-type]
        silent = xdsclient.XdsClient(st.target, node("silent", "cluster2"), auto_ack=False)  # type: ignore[arg-type]
        nacker = xdsclient.XdsClient(st.target, node("nacker", "cluster1"))  # type: ignore[arg-type]
        async with synced, silent, nacker:
            for c in (synced, silent, nacker):
                await c.subscribe(CDS)
                await c.wait_responses(CDS, 1)
            await synced.subscribe(LDS)
            await synced.wait_responses(LDS, 1)
            nacker.nack_next(CDS, "bad cluster")
            await st.push()
            await nacker.wait(lambda c: bool(c.view(CDS).nacked))
            await synced.wait_responses(CDS, 2)
            await silent.wait_responses(CDS, 2)

            def settled() -> bool:
                e = {x["proxy"]: x for x in st.ads.syncz()}
                s, n = e["synced.sample"], e["nacker.sample"]
                return bool(
                    s["cluster_sent"] == s["cluster_acked"]
                    and s["listener_sent"] == s["listener_acked"]
                    and n["xds"]["cds"]["last_nack"]
                )

            await wait_for(settled, what="acks and the nack reached the server")
            url = st.debug_url
            code, out, err = await meshplane("proxy-status", "--istiod-url", url)
            assert code == 0, err
            lines = out.splitlines()
            assert lines[0].split() == [
                "NAME",
                "CLUSTER",
                "CDS",
                "LDS",
                "EDS",
                "RDS",
                "ECDS",
                "ISTIOD",
                "VERSION",
            ]
            label = url.removeprefix("http://")
            ns = ["NOT", "SENT"]
            assert lines[1].split() == ["nacker.sample", "cluster1", "STALE", *ns * 4, label, "1.24.0"]
            assert lines[2].split()[:5] == ["synced.sample", "cluster1", "SYNCED", "SYNCED", "NOT"]
            assert lines[3].startswith(
                "silent.sample     cluster2     STALE (Never Acknowledged)     NOT SENT"
            )
            # columns aligned as Go's tabwriter does: 5 spaces after the widest cell
            assert lines[0].index("CDS") == lines[1].index("STALE") == lines[2].index("SYNCED") == 31
            assert (
                lines[0].index("LDS")
                == lines[2].index("SYNCED", 32)
                == 31 + len("STALE (Never Acknowledged)") + 5
            )

            code, out, _ = await meshplane("proxy-status", "synced", "--istiod-url", url, "-o", "json")
            assert code == 0
            (row,) = json.loads(out)
            assert row == {
                "name": "synced.sample",
                "cluster": "cluster1",
                "cds": "SYNCED",
                "lds": "SYNCED",
                "eds": "NOT SENT",
                "rds": "NOT SENT",
                "ecds": "NOT SENT",
                "istiod": label,
                "version": "1.24.0",
            }


async def test_proxy_status_errors_are_clear() -> None:
    code, _, err = await meshplane("proxy-status", "--istiod-url", "http://127.0.0.1:9")
    assert code == 1 and "127.0.0.1:9/debug/syncz" in err
    code, _, err = await meshplane("proxy-status", "--istiod-url", "127.0.0.1:9")
    assert code == 1 and "want http://HOST:PORT" in err
    code, _, err = await meshplane("proxy-status", "-o", "yaml", "--istiod-url", "http://127.0.0.1:9")
    assert code == 1 and "--output must be table or json" in err
    code, _, err = await meshplane("proxy-status", "--kubeconfig", "/nonexistent/kubeconfig")
    assert code == 1 and "kubeconfig" in err
