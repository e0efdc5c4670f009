"""What an install applies to one cluster: the rendered objects, with gateway defaults read from the
control plane already in that cluster (see gateways.MeshDefaults)."""

from __future__ import annotations

from typing import Any

from meshplane.installer import apply, config, gateways, pilot, render


async def mesh_defaults(applier: apply.Applier, cfg: config.InstallConfig) -> gateways.MeshDefaults:
    """The control plane's values in this cluster, when the install has gateways and leaves them out."""
    if not cfg.gateways or cfg.cluster_name:
        return gateways.MeshDefaults()
    probe = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": pilot.injector_configmap(cfg)["metadata"]["name"], "namespace": cfg.namespace},
    }
    try:
        live = await applier.get(probe)
    except Exception as e:
        raise apply.cluster_error("reading the control plane's injector values", e) from e
    values = ((live or {}).get("data") or {}).get("values")
    return gateways.MeshDefaults.from_injector_values(values) if values else gateways.MeshDefaults()


async def objects(applier: apply.Applier, cfg: config.InstallConfig) -> list[dict[str, Any]]:
    return render.render(cfg, await mesh_defaults(applier, cfg))
