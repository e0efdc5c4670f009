"""`meshplane x authz check POD`: the AuthorizationPolicies that apply to a pod and the Envoy RBAC
they become, as `istioctl x authz check` lists them (ACTION, AuthorizationPolicy `NAME.NAMESPACE`,
RULES).

istioctl reads the RBAC filters from the pod's live Envoy config dump; this computes them the way
the control plane does (policy/config.py selection, xds/rbac.py), from the pod's labels and the
AuthorizationPolicies of the config cluster read through the Kubernetes API. Invalid policies are
listed as problems (an invalid DENY shows as the deny-everything stand-in the proxies get).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from lightkube.core import exceptions as lk_exceptions
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources import core_v1

from meshplane.ctl import errors, proxystatus
from meshplane.kube import client as kube_client
from meshplane.kube import errors as kube_errors
from meshplane.policy import authz
from meshplane.policy import config as policy_config
from meshplane.xds import rbac

AuthorizationPolicy = create_namespaced_resource(
    "security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"
)
HEADER = ("ACTION", "AuthorizationPolicy", "RULES")


@dataclass(frozen=True, slots=True)
class Report:
    pod: str
    namespace: str
    policies: tuple[authz.AuthorizationPolicy, ...]
    problems: tuple[str, ...] = ()
    http: tuple[dict[str, Any], ...] = field(default=())  # the HTTP RBAC filters, as JSON
    tcp: tuple[dict[str, Any], ...] = field(default=())  # the network RBAC filters, as JSON

    def table(self) -> str:
        rows = [(p.action.value, f"{p.name}.{p.namespace}", str(len(p.rules))) for p in self.policies]
        return proxystatus.tabulate(HEADER, rows)

    def as_json(self) -> str:
        doc = {
            "pod": f"{self.pod}.{self.namespace}",
            "policies": [
                {"action": p.action.value, "name": p.name, "namespace": p.namespace, "rules": len(p.rules)}
                for p in self.policies
            ],
            "problems": list(self.problems),
            "httpFilters": list(self.http),
            "tcpFilters": list(self.tcp),
        }
        return json.dumps(doc, indent=2) + "\n"


def report(
    pod: str,
    namespace: str,
    labels: Mapping[str, str],
    objects: list[Mapping[str, Any]],
    root_namespace: str = "istio-system",
) -> Report:
    cfg, problems = policy_config.build(objects)
    applied = cfg.authorization(root_namespace, namespace, labels)

    def dump(filters: list[Any]) -> tuple[dict[str, Any], ...]:
        return tuple(json_format.MessageToDict(f, preserving_proto_field_name=False) for f in filters)

    return Report(
        pod,
        namespace,
        applied,
        tuple(str(p) for p in problems),
        dump(rbac.http_filters(applied)),
        dump(rbac.network_filters(applied)),
    )


async def check(
    pod: str, namespace: str, kubeconfig: str | None, context: str | None, root_namespace: str
) -> Report:
    cfg = await asyncio.to_thread(kube_client.load_config, kubeconfig, context)
    client = await asyncio.to_thread(kube_client.make_client, cfg)
    try:
        try:
            found = await client.get(core_v1.Pod, pod, namespace=namespace)
        except lk_exceptions.ApiError as e:
            raise errors.CtlError(f"pod {namespace}/{pod}: {kube_errors.describe(e)}") from e
        objects = [o.to_dict() async for o in client.list(AuthorizationPolicy, namespace="*")]
    except (lk_exceptions.ApiError, OSError) as e:
        raise errors.CtlError(f"cannot read AuthorizationPolicies: {kube_errors.describe(e)}") from e
    finally:
        await client.close()
    labels = dict((found.metadata.labels if found.metadata else None) or {})
    return report(pod, namespace, labels, objects, root_namespace)
