"""Dev clusters for tests: in-process on a background thread, or as a subprocess (kill -9 tests),
plus helpers to drive them with the real kubectl and with lightkube."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml

from meshplane.devcluster import app as devcluster_app
from meshplane.devcluster import kubeconfig
from meshplane.devcluster.api import context

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")
T = TypeVar("T")


class ThreadedCluster:
    """A DevCluster running on its own event loop in a daemon thread, shareable by many tests
    (whatever their event loops) and by synchronous kubectl tests."""

    def __init__(
        self,
        name: str = "test",
        data_dir: Path | None = None,
        settings: context.Settings | None = None,
        **kwargs: Any,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"devcluster-{name}", daemon=True)
        self._thread.start()
        self.cluster = devcluster_app.DevCluster(name=name, data_dir=data_dir, settings=settings, **kwargs)

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout)

    def run(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Run a plain function on the cluster's loop thread (for reading the store consistently)."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def go() -> None:
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

        self._loop.call_soon_threadsafe(go)
        return fut.result(timeout)

    def start(self) -> ThreadedCluster:
        self.call(self.cluster.start)
        return self

    def stop(self) -> None:
        self.call(self.cluster.stop)

    def close(self) -> None:
        """Stop the cluster, then its loop: the loop's default-executor threads are joined before
        the loop thread ends, so nothing of the cluster outlives this call."""
        if self.cluster.running:
            self.stop()
        self.call(self._loop.shutdown_default_executor)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def kubeconfig(self) -> dict[str, Any]:
        return self.cluster.kubeconfig_dict()

    def write_kubeconfig(self, path: Path) -> Path:
        return self.cluster.write_kubeconfig(path)


class ClusterProcess:
    """`python -m meshplane devcluster serve` as a subprocess: ready line parsed, killed by PID."""

    def __init__(self, name: str, data_dir: Path | None, workdir: Path, *extra: str) -> None:
        self.name = name
        self.data_dir = data_dir
        self.workdir = workdir
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.kubeconfig_path = workdir / f"{name}.kubeconfig"
        self.port = 0

    def start(self, timeout: float = 30.0) -> ClusterProcess:
        args = [
            sys.executable,
            "-m",
            "meshplane",
            "devcluster",
            "serve",
            "--name",
            self.name,
            "--kubeconfig-out",
            str(self.kubeconfig_path),
        ]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        if self.port:
            args += ["--port", str(self.port)]
        args += self.extra
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.workdir)
        log.close()
        assert self.proc.stdout is not None
        line = _readline(self.proc, timeout)
        if not line.startswith("ready https://"):
            self.kill()
            raise RuntimeError(f"dev cluster did not start: {line!r}; log: {self.log()[-2000:]}")
        self.url = line.split()[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def log(self) -> str:
        p = self.workdir / f"{self.name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    @property
    def kubeconfig(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(self.kubeconfig_path.read_text())
        return data

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        return code


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    result: list[bytes] = []
    t = threading.Thread(
        target=lambda: result.append(proc.stdout.readline() if proc.stdout else b""), daemon=True
    )
    t.start()
    t.join(timeout)
    return result[0].decode().strip() if result else ""


def kubectl(
    kubeconfig_path: Path,
    *args: str,
    check: bool = True,
    input_text: str | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl with a private HOME (its discovery cache stays in the test's tmp dir)."""
    home = kubeconfig_path.parent / ".kubectl-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig_path),
    }
    proc = subprocess.run(
        [KUBECTL, *args],
        capture_output=True,
        text=True,
        input=input_text,
        env=env,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}"
        )
    return proc


def kubectl_json(kubeconfig_path: Path, *args: str) -> Any:
    return json.loads(kubectl(kubeconfig_path, *args, "-o", "json").stdout)


def lightkube_client(cfg: dict[str, Any], **kwargs: Any) -> Any:
    from lightkube import AsyncClient, KubeConfig

    return AsyncClient(config=KubeConfig.from_dict(cfg), **kwargs)


def merged_kubeconfig(*cfgs: dict[str, Any]) -> str:
    return kubeconfig.dump(kubeconfig.merge(list(cfgs)))


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
