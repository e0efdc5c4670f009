"""Semantic checks of a profile-merged IstioOperator spec: names, addresses, ports, required fields.

Everything here runs before anything is rendered or applied; each problem names its spec path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshplane.installer import errors
from meshplane.runtime import ipaddr

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_ID = re.compile(r"[-._a-zA-Z0-9]+")
_IMAGE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]*")
_QUANTITY = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]i?|Ki)?")
_PATH = re.compile(r"/inject(/[-._~%!$&'()*+,;=:@A-Za-z0-9]*)*/?")

PROFILES_WITH_CONTROL_PLANE = ("default", "minimal")


def parse_bool(raw: str) -> bool:
    """Go's strconv.ParseBool truthy spellings (what istiod applies to EXTERNAL_ISTIOD)."""
    return raw in ("1", "t", "T", "TRUE", "true", "True")


def is_dns_label(s: str) -> bool:
    return len(s) <= 63 and bool(_DNS_LABEL.fullmatch(s))


def is_dns1035_label(s: str) -> bool:
    return len(s) <= 63 and bool(_DNS1035.fullmatch(s))


def is_dns_subdomain(s: str) -> bool:
    return len(s) <= 253 and all(is_dns_label(p) for p in s.split("."))


def is_hostname(s: str) -> bool:
    return is_dns_subdomain(s.lower().rstrip(".")) and not s.startswith(".")


def is_label_value(s: str) -> bool:
    return len(s) <= 63 and bool(_LABEL_VALUE.fullmatch(s))


def is_label_key(s: str) -> bool:
    prefix, _, name = s.rpartition("/")
    if prefix and not is_dns_subdomain(prefix):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.fullmatch(name))


def is_env_name(s: str) -> bool:
    return bool(_ENV_NAME.fullmatch(s))


def is_quantity(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int | float) or (isinstance(v, str) and bool(_QUANTITY.fullmatch(v)))


def _get(tree: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(p)
    return tree


class _Checker:
    def __init__(self) -> None:
        self.issues: list[errors.Issue] = []

    def add(self, path: str, message: str) -> None:
        self.issues.append(errors.Issue(path, message))

    def ident(self, value: Any, path: str, what: str) -> None:
        if isinstance(value, str) and value and not _ID.fullmatch(value):
            self.add(path, f"{value!r} is not a valid {what} (letters, digits, '-', '_' and '.' only)")

    def label_map(self, labels: Any, path: str) -> None:
        for k, v in (labels or {}).items():
            if not is_label_key(k):
                self.add(f"{path}.{k}", f"{k!r} is not a valid label key")
            if isinstance(v, str) and not is_label_value(v):
                self.add(f"{path}.{k}", f"{v!r} is not a valid label value")

    def resources(self, res: Any, path: str) -> None:
        for section in ("requests", "limits"):
            for k, v in (_get(res, section) or {}).items():
                if not is_quantity(v):
                    self.add(f"{path}.{section}.{k}", f"{v!r} is not a Kubernetes quantity")

    def k8s(self, k8s: Any, path: str) -> None:
        if not isinstance(k8s, Mapping):
            return
        for i, env in enumerate(k8s.get("env") or []):
            p = f"{path}.env[{i}]"
            name = env.get("name")
            if not name:
                self.add(f"{p}.name", "required")
            elif not is_env_name(name):
                self.add(f"{p}.name", f"{name!r} is not a valid environment variable name")
            if env.get("value") is not None and env.get("valueFrom") is not None:
                self.add(p, "set value or valueFrom, not both")
        self.resources(k8s.get("resources"), f"{path}.resources")
        if k8s.get("replicaCount") is not None and k8s["replicaCount"] < 0:
            self.add(f"{path}.replicaCount", "must not be negative")
        if k8s.get("imagePullPolicy") and k8s["imagePullPolicy"] not in ("Always", "IfNotPresent", "Never"):
            self.add(f"{path}.imagePullPolicy", "must be Always, IfNotPresent or Never")
        svc = k8s.get("service") or {}
        stype = svc.get("type")
        if stype and stype not in ("ClusterIP", "NodePort", "LoadBalancer"):
            self.add(f"{path}.service.type", f"{stype!r} must be ClusterIP, NodePort or LoadBalancer")
        seen: set[str] = set()
        for i, port in enumerate(svc.get("ports") or []):
            p = f"{path}.service.ports[{i}]"
            number = port.get("port")
            if number is None:
                self.add(f"{p}.port", "required")
            elif not 1 <= number <= 65535:
                self.add(f"{p}.port", f"{number} is not a port number (1-65535)")
            name = port.get("name")
            if not name:
                self.add(f"{p}.name", "required")
            elif not is_dns_label(name):
                self.add(f"{p}.name", f"{name!r} is not a valid port name")
            elif name in seen:
                self.add(f"{p}.name", f"duplicate port name {name!r}")
            seen.add(name or "")
            target = port.get("targetPort")
            if isinstance(target, int) and not 1 <= target <= 65535:
                self.add(f"{p}.targetPort", f"{target} is not a port number (1-65535)")
            if port.get("protocol") and port["protocol"] not in ("TCP", "UDP", "SCTP"):
                self.add(f"{p}.protocol", "must be TCP, UDP or SCTP")


def semantic(final: Mapping[str, Any]) -> list[errors.Issue]:
    """Cross-field checks on the profile-merged spec."""
    c = _Checker()
    profile = final.get("profile") or "default"
    glob = _get(final, "values", "global") or {}
    remote_prof = profile == "remote" or bool(_get(final, "values", "istiodRemote", "enabled"))
    pilot_on = _get(final, "components", "pilot", "enabled") is not False

    rev = final.get("revision") or ""
    if rev and not is_dns_label(rev):
        c.add("spec.revision", f"{rev!r} is not a valid revision (a DNS-1123 label: lower-case, digits, '-')")
    ns = final.get("namespace") or ""
    if ns and not is_dns_label(ns):
        c.add("spec.namespace", f"{ns!r} is not a valid namespace name")
    ins = glob.get("istioNamespace") or ""
    if ins and not is_dns_label(ins):
        c.add("spec.values.global.istioNamespace", f"{ins!r} is not a valid namespace name")

    cluster = _get(glob, "multiCluster", "clusterName") or ""
    c.ident(cluster, "spec.values.global.multiCluster.clusterName", "cluster name")
    c.ident(glob.get("meshID"), "spec.values.global.meshID", "mesh ID")
    network = glob.get("network") or ""
    if network and not is_label_value(network):
        c.add(
            "spec.values.global.network",
            f"{network!r} is not a valid network name (it becomes a label value)",
        )
    for key in ("hub", "tag"):
        v = glob.get(key)
        if isinstance(v, str) and (not v or not _IMAGE_PART.fullmatch(v)):
            c.add(f"spec.values.global.{key}", f"{v!r} is not a valid image {key}")
    td = _get(final, "meshConfig", "trustDomain") or glob.get("trustDomain") or ""
    if td and not is_hostname(td):
        c.add("spec.meshConfig.trustDomain", f"{td!r} is not a valid trust domain")
    if _get(final, "meshConfig", "enablePrometheusMerge") is False:
        # the injector always applies Istio's default (on); pods opt out with an annotation
        c.add(
            "spec.meshConfig.enablePrometheusMerge",
            'meshplane supports only true (opt a pod out with prometheus.istio.io/merge-metrics: "false")',
        )
    if glob.get("jwtPolicy") not in (None, "third-party-jwt"):
        c.add("spec.values.global.jwtPolicy", "meshplane supports only 'third-party-jwt'")
    if glob.get("pilotCertProvider") not in (None, "istiod"):
        c.add("spec.values.global.pilotCertProvider", "meshplane supports only 'istiod'")
    if glob.get("imagePullPolicy") and glob["imagePullPolicy"] not in ("Always", "IfNotPresent", "Never"):
        c.add("spec.values.global.imagePullPolicy", "must be Always, IfNotPresent or Never")

    env = _get(final, "values", "pilot", "env") or {}
    for k in env:
        if not is_env_name(k):
            c.add(f"spec.values.pilot.env.{k}", f"{k!r} is not a valid environment variable name")
    external = glob.get("externalIstiod") is True or str(env.get("EXTERNAL_ISTIOD", "")).lower() in (
        "true",
        "1",
        "t",
    )

    if pilot_on and not remote_prof and not cluster:
        why = [
            n
            for n, on in (
                ("EXTERNAL_ISTIOD", external),
                ("meshID", bool(glob.get("meshID"))),
                ("network", bool(network)),
            )
            if on
        ]
        if why:
            c.add(
                "spec.values.global.multiCluster.clusterName",
                f"required for a multicluster control plane ({', '.join(why)} set): remote secrets, "
                "injection paths and the controlPlaneClusters annotation name clusters by it",
            )

    addr = glob.get("remotePilotAddress") or ""
    if remote_prof and not addr:
        c.add(
            "spec.values.global.remotePilotAddress",
            "required with the remote profile: the address (IP or host name) where this cluster "
            "reaches the primary's control plane, e.g. the east-west gateway's load-balancer IP",
        )
    if addr and not (ipaddr.is_ip(addr) or is_hostname(addr)):
        c.add("spec.values.global.remotePilotAddress", f"{addr!r} is neither an IP address nor a host name")

    path = _get(final, "values", "istiodRemote", "injectionPath") or "/inject"
    if not _PATH.fullmatch(path):
        c.add("spec.values.istiodRemote.injectionPath", f"{path!r} must be /inject or start with /inject/")
    url = _get(final, "values", "istiodRemote", "injectionURL") or ""
    if url and not re.fullmatch(r"https://[^\s/]+(/\S*)?", url):
        c.add("spec.values.istiodRemote.injectionURL", f"{url!r} is not an https:// URL")
    vurl = _get(final, "values", "base", "validationURL") or ""
    if vurl and not re.fullmatch(r"https://[^\s/]+(/\S*)?", vurl):
        c.add("spec.values.base.validationURL", f"{vurl!r} is not an https:// URL")

    c.k8s(_get(final, "components", "pilot", "k8s"), "spec.components.pilot.k8s")
    c.resources(_get(final, "values", "pilot", "resources"), "spec.values.pilot.resources")
    c.resources(_get(glob, "proxy", "resources"), "spec.values.global.proxy.resources")
    for key in ("ingressGateways", "egressGateways"):
        names: set[tuple[str, str]] = set()
        for i, gw in enumerate(_get(final, "components", key) or []):
            p = f"spec.components.{key}[{i}]"
            name = gw.get("name") or ""
            gns = gw.get("namespace") or ns or "istio-system"
            if not name:
                c.add(f"{p}.name", "required")
            elif not is_dns1035_label(name):
                c.add(f"{p}.name", f"{name!r} is not a valid name (a DNS-1035 label)")
            elif (gns, name) in names:
                c.add(f"{p}.name", f"duplicate gateway {name!r}")
            names.add((gns, name))
            if gw.get("namespace") and not is_dns_label(gw["namespace"]):
                c.add(f"{p}.namespace", f"{gw['namespace']!r} is not a valid namespace name")
            c.label_map(gw.get("label"), f"{p}.label")
            c.k8s(gw.get("k8s"), f"{p}.k8s")
    return c.issues
