from __future__ import annotations

import copy
from typing import Any

import pytest

from meshplane.webhooks import settings

SETTINGS = settings.InjectionSettings(
    proxy_image="docker.io/meshplane/proxyv2:0.1.0",
    cluster_name="cluster1",
    network="network1",
    mesh_id="mesh1",
)

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "helloworld-v2-7d9f8-",
        "namespace": "sample",
        "labels": {"app": "helloworld", "version": "v2", "pod-template-hash": "7d9f8"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "helloworld-v2-7d9f8",
                "controller": True,
                "uid": "u",
            }
        ],
    },
    "spec": {
        "serviceAccountName": "default",
        "containers": [
            {
                "name": "helloworld",
                "image": "registry.istio.io/release/examples-helloworld-v2:1.0",
                "ports": [{"containerPort": 5000, "protocol": "TCP"}],
            }
        ],
    },
}


@pytest.fixture
def pod() -> dict[str, Any]:
    return copy.deepcopy(POD)


@pytest.fixture
def inj_settings() -> settings.InjectionSettings:
    return SETTINGS
