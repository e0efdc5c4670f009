"""The HTTPS webhook server on 15017: sidecar injection (`/inject`, `/inject/...`) and config
validation (`/validate`: every networking.istio.io kind networking/config.py reads and every
security.istio.io kind policy/config.py reads, through their own parsers).

Settings come from the injector values Istio's istiod reads: the mounted `istio-sidecar-injector`
ConfigMap file when present (a real pod), else the same ConfigMap watched through the API, else
defaults from this control plane's own flags. TLS uses the control plane's serving cert, whose SANs
cover `istiod.istio-system.svc`, the name webhooks are called with.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from typing import Any

import lightkube
from aiohttp import web
from lightkube.resources import core_v1

from meshplane.installer import profiles
from meshplane.kube import informer as inf
from meshplane.model import crfields
from meshplane.networking import config as net_config
from meshplane.policy import config as policy_config
from meshplane.runtime import podroot, tasks
from meshplane.runtime.logging import kv
from meshplane.webhooks import errors as webhook_errors
from meshplane.webhooks import handler, settings, validate

log = logging.getLogger(__name__)

INJECTOR_CONFIGMAP = "istio-sidecar-injector"
MAX_BODY = 16 * 1024 * 1024


def default_settings(
    cluster_id: str, network: str, mesh_id: str, trust_domain: str, namespace: str, revision: str
) -> settings.InjectionSettings:
    return settings.InjectionSettings(
        proxy_image=f"{profiles.DEFAULT_HUB}/{profiles.PROXY_IMAGE}:{profiles.DEFAULT_TAG}",
        cluster_name=cluster_id,
        network=network,
        mesh_id=mesh_id,
        trust_domain=trust_domain,
        istio_namespace=namespace,
        revision="" if revision == "default" else revision,
    )


def ssl_context(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context from PEM bytes (through a private temp dir: the ssl module reads files)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    load_cert(ctx, chain_pem, key_pem)
    return ctx


def load_cert(ctx: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    """Put a (new) certificate into `ctx`: later handshakes present it (blocking: temp files)."""
    with tempfile.TemporaryDirectory() as d:
        cert_path, key_path = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        for path, data in ((cert_path, chain_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)


def check_config(obj: Mapping[str, Any]) -> validate.Verdict:
    """The validation webhook's check: the control plane's own parsers, so what the webhook admits
    is exactly what the control plane will use (and the error is the one it would log)."""
    group = str(obj.get("apiVersion") or "").partition("/")[0]
    kind = str(obj.get("kind") or "")
    if group == "networking.istio.io" and kind in net_config.KINDS:
        _, problems = net_config.build([obj])
        return validate.Verdict(str(problems[0]) if problems else "")
    if group == "security.istio.io" and kind in policy_config.KINDS:
        try:
            policy_config.parse(obj)
        except crfields.ConfigError as e:
            return validate.Verdict(str(e))
        return validate.Verdict()
    return validate.Verdict(warning=f"meshplane does not read {kind} ({group}); it was not validated")


class WebhookServer:
    def __init__(
        self,
        client: lightkube.AsyncClient,
        *,
        cluster_id: str,
        namespace: str,
        defaults: settings.InjectionSettings,
    ) -> None:
        self.cluster_id = cluster_id
        self.namespace = namespace
        self._defaults = defaults
        self.injector = handler.Injector(self._initial())
        self.validator = validate.Validator(check_config)
        self._configmaps: inf.Informer[Any] = inf.Informer(
            client,
            core_v1.ConfigMap,
            cluster_id=cluster_id,
            namespace=namespace,
            fields={"metadata.name": INJECTOR_CONFIGMAP},
        )
        self._configmaps.add_handler(lambda _: self._reload())
        self._group = tasks.TaskGroup("webhook")
        self._runner: web.AppRunner | None = None
        self.port = 0

    def _initial(self) -> settings.InjectionSettings:
        if podroot.path(settings.VALUES_FILE).is_file():
            try:
                return settings.load_values_file()
            except webhook_errors.WebhookError as e:
                log.error("injector values file rejected %s", kv(cluster=self.cluster_id, reason=e))
        return self._defaults

    def _reload(self) -> None:
        cm = self._configmaps.get(INJECTOR_CONFIGMAP, self.namespace)
        raw = (cm.data or {}).get("values") if cm is not None else None
        if not raw:
            self.injector.update(self._initial())
            return
        try:
            values = json.loads(raw)
            if not isinstance(values, dict):
                raise webhook_errors.WebhookError("values is not a JSON object")
            self.injector.update(settings.InjectionSettings.from_values(values))
            log.info(
                "injector settings updated %s", kv(cluster=self.cluster_id, configmap=INJECTOR_CONFIGMAP)
            )
        except (ValueError, webhook_errors.WebhookError) as e:
            log.error(
                "injector values rejected, keeping the last good ones %s",
                kv(cluster=self.cluster_id, configmap=f"{self.namespace}/{INJECTOR_CONFIGMAP}", reason=e),
            )

    async def start(self, host: str, port: int, tls: ssl.SSLContext) -> int:
        self._group.start(self._configmaps.run(), "injector-configmap")
        app = web.Application(client_max_size=MAX_BODY)
        handler.add_routes(app, self.injector)
        validate.add_routes(app, self.validator)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=tls)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("webhook server listening %s", kv(cluster=self.cluster_id, address=host, port=self.port))
        return self.port

    async def stop(self) -> None:
        await self._group.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
