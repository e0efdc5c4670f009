"""lab.images: which program each image stands for; never the container's own command."""

from __future__ import annotations

import pytest

from meshplane.lab import errors
from meshplane.lab.node import images


@pytest.mark.parametrize(
    ("image", "program", "version"),
    [
        ("docker.io/meshplane/pilot:0.1.0", images.Program.CONTROL_PLANE, None),
        ("gcr.io/istio-release/pilot:1.24.0", images.Program.CONTROL_PLANE, None),
        ("docker.io/meshplane/proxyv2:0.1.0", images.Program.PROXY, None),
        ("registry.istio.io/release/examples-helloworld-v1:1.0", images.Program.HELLOWORLD, "v1"),
        ("registry.istio.io/release/examples-helloworld-v2:1.0", images.Program.HELLOWORLD, "v2"),
        ("docker.io/istio/examples-helloworld-v1", images.Program.HELLOWORLD, "v1"),
        ("istio/examples-helloworld-v2:1.0.0", images.Program.HELLOWORLD, "v2"),
        ("docker.io/curlimages/curl:8.16.0", images.Program.IDLE, None),
        ("curlimages/curl", images.Program.IDLE, None),
        ("governmentpaas/curl-ssl", images.Program.IDLE, None),
    ],
)
def test_table(image: str, program: images.Program, version: str | None) -> None:
    entry = images.find(image)
    assert entry is not None and entry.program is program
    assert entry.env.get("SERVICE_VERSION") == version


def test_normalize() -> None:
    assert images.normalize("busybox") == "docker.io/library/busybox"
    assert images.normalize("curlimages/curl:8") == "docker.io/curlimages/curl:8"
    assert images.normalize("localhost/x:1") == "localhost/x:1"
    assert images.normalize("reg.io:5000/a/b@sha256:abc") == "reg.io:5000/a/b"


def test_argv() -> None:
    cp = images.launch_for("docker.io/meshplane/pilot:0.1.0", ["discovery", "--network", "n1"], "py")
    assert cp.argv == ("py", "-m", "meshplane", "discovery", "--network", "n1")
    px = images.launch_for("docker.io/meshplane/proxyv2:0.1.0", ["proxy", "sidecar"], "py")
    assert px.argv == ("py", "-m", "meshplane", "agent", "proxy", "sidecar")
    hw = images.launch_for("docker.io/istio/examples-helloworld-v1", ["--ignored"], "py")
    assert hw.argv == ("py", "-m", "meshplane.lab.apps", "helloworld")
    idle = images.launch_for("curlimages/curl", ["anything"], "py")
    assert idle.argv == ("py", "-m", "meshplane.lab.apps", "idle")


@pytest.mark.parametrize("image", ["nginx:1.25", "docker.io/library/busybox", "quay.io/x/pilot-ish:1", ""])
def test_unknown_images(image: str) -> None:
    with pytest.raises(errors.UnknownImage, match="image table") as e:
        images.launch_for(image, [])
    assert f'"{image}"' in str(e.value)
