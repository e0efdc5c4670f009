"""Discovery documents: legacy (/api, /apis, /apis/G, /api/v1, /apis/G/V) and aggregated v2.

kubectl 1.32 asks /api and /apis for `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`
first; answering that saves it one request per group-version.
"""

from __future__ import annotations

from aiohttp import web

from meshplane.devcluster.schema import resources
from meshplane.runtime.jsonobj import Obj

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_STATUS_VERBS = ["get", "patch", "update"]


def wants_aggregated(request: web.BaseRequest) -> bool:
    for part in request.headers.get("Accept", "").split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if "g=apidiscovery.k8s.io" in params and "as=APIGroupDiscoveryList" in params and "v=v2" in params:
            return True
        if part.strip().split(";")[0] in ("application/json", "*/*"):
            return False
    return False


def _preferred(versions: list[str]) -> str:
    return versions[0] if versions else "v1"


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(reg: resources.Registry, group: str, versions: list[str]) -> Obj:
    pref = _preferred(versions)
    return {
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{pref}", "version": pref},
    }


def api_group_list(reg: resources.Registry) -> Obj:
    groups = [_group(reg, g, vs) for g, vs in reg.group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(reg: resources.Registry, group: str) -> Obj | None:
    versions = reg.group_versions().get(group)
    if not versions or not group:
        return None
    return dict(_group(reg, group, versions), kind="APIGroup", apiVersion="v1")


def resource_list(reg: resources.Registry, group: str, version: str) -> Obj | None:
    gv = f"{group}/{version}" if group else version
    if version not in reg.group_versions().get(group, []):
        return None
    out: list[Obj] = []
    for rt in reg.in_group_version(group, version):
        entry: Obj = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        out.append(entry)
        for sub in rt.subresources:
            sub_entry: Obj = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced}
            sg, sv, sk = rt.subresource_kind(sub)
            if (sg, sv) != (rt.group, rt.version):
                sub_entry.update(group=sg, version=sv)
            sub_entry.update(kind=sk, verbs=_STATUS_VERBS)
            out.append(sub_entry)
        for sub, ex in reg.extra_subresources(group, rt.plural):
            out.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "group": ex.group,
                    "version": ex.version,
                    "kind": ex.kind,
                    "verbs": list(ex.verbs),
                }
            )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def aggregated(reg: resources.Registry, *, core: bool) -> Obj:
    items: list[Obj] = []
    for group, versions in reg.group_versions().items():
        if (group == "") != core:
            continue
        vdocs = []
        for v in versions:
            res: list[Obj] = []
            for rt in reg.in_group_version(group, v):
                subs: list[Obj] = [
                    {
                        "subresource": s,
                        "responseKind": dict(
                            zip(("group", "version", "kind"), rt.subresource_kind(s), strict=True)
                        ),
                        "verbs": _STATUS_VERBS,
                    }
                    for s in rt.subresources
                ]
                for s, ex in reg.extra_subresources(group, rt.plural):
                    subs.append(
                        {
                            "subresource": s,
                            "responseKind": {"group": ex.group, "version": ex.version, "kind": ex.kind},
                            "verbs": list(ex.verbs),
                        }
                    )
                entry: Obj = {
                    "resource": rt.plural,
                    "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                    "scope": "Namespaced" if rt.namespaced else "Cluster",
                    "singularResource": rt.singular,
                    "verbs": list(rt.verbs),
                }
                if rt.short_names:
                    entry["shortNames"] = list(rt.short_names)
                if rt.categories:
                    entry["categories"] = list(rt.categories)
                if subs:
                    entry["subresources"] = subs
                res.append(entry)
            vdocs.append({"version": v, "resources": res, "freshness": "Current"})
        items.append({"metadata": {"name": group}, "versions": vdocs})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def version_info(git_version: str) -> Obj:
    import platform

    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "python" + platform.python_version(),
        "compiler": "cpython",
        "platform": "linux/amd64",
    }
