"""`meshplane install` stops waiting at once when the kubelet reports that a Deployment's pods
cannot get their image (ErrImagePull / ImagePullBackOff), naming the image; other waits still time
out as before."""

from __future__ import annotations

import asyncio
import time

from lightkube.models import core_v1 as m
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1

from meshplane.installer import profiles
from tests.support.clusters import lightkube_client
from tests.support.installenv import CLUSTER1_YAML, Env

IMAGE = f"{profiles.DEFAULT_HUB}/{profiles.PILOT_IMAGE}:{profiles.DEFAULT_TAG}"


def kubelet_cannot_pull(env: Env, reason: str) -> None:
    """An istiod pod as a kubelet leaves it when the registry has no such image."""
    pod = core_v1.Pod(
        metadata=ObjectMeta(name="istiod-5d8f7c9b4-abcde", namespace="istio-system",
                            labels={"app": "istiod", "istio": "pilot"}),
        spec=m.PodSpec(containers=[m.Container(name="discovery", image=IMAGE)]),
    )  # fmt: skip
    status = {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": "discovery", "image": IMAGE, "imageID": "", "ready": False, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": f'Back-off pulling image "{IMAGE}"'}},
            }
        ],
    }  # fmt: skip

    async def go() -> None:
        c = lightkube_client(env.c1.kubeconfig)
        await c.create(pod)
        await c.patch(core_v1.Pod.Status, pod.metadata.name, {"status": status}, namespace="istio-system")
        await c.close()

    asyncio.run(go())


def test_install_fails_fast_naming_the_image_the_cluster_cannot_pull(env: Env) -> None:
    c1 = env.file("cluster1.yaml", CLUSTER1_YAML)
    r = env.meshplane("install", "-y", "--context=cluster1", "-f", c1, "--no-wait")
    assert r.returncode == 0, r.stderr
    kubelet_cannot_pull(env, "ImagePullBackOff")
    t0 = time.monotonic()
    r = env.meshplane("install", "-y", "--context=cluster1", "-f", c1, "--readiness-timeout", "120s")
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert "cannot pull the images" in r.stderr and f"ImagePullBackOff for image '{IMAGE}'" in r.stderr
    assert "Deployment istio-system/istiod: pod istiod-5d8f7c9b4-abcde container discovery" in r.stderr
    assert "make images" in r.stderr
    assert "timed out" not in r.stderr and took < 60, took
