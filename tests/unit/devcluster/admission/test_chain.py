"""Webhook admission: matching, calling over HTTPS, patching, failure policies, Kubernetes' errors."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from meshplane.devcluster import errors, seams
from meshplane.devcluster.admission import chain, webhookclient
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.jsonobj import Obj
from tests.support import webhooks

USER = seams.UserInfo("alice", "uid-a", ("devs", "system:authenticated"), {"k": ("v",)})
MWC = chain.MUTATING
VWC = chain.VALIDATING


@pytest.fixture
async def st() -> store.Store:
    s = store.Store(persistence.MemoryPersistence(), clock_mod.SystemClock())
    await s.open()
    await s.create("namespaces", {"metadata": {"name": "ns", "labels": {"inject": "on"}}})
    await s.create("namespaces", {"metadata": {"name": "plain"}})
    return s


@pytest.fixture(scope="module")
def certs() -> webhooks.Certs:
    return webhooks.make_certs(["hook.ns.svc", "localhost"])


def pod(ns: str = "ns", labels: dict[str, str] | None = None, name: str = "p") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {
            "containers": [{"name": "c", "image": "app"}],
            "automountServiceAccountToken": False,
            "serviceAccountName": "default",
            "serviceAccount": "default",
        },
    }


def request(obj: Obj | None, op: str = "CREATE", old: Obj | None = None, **kw: Any) -> seams.AdmissionRequest:
    meta = (obj or old or {}).get("metadata", {})
    args: dict[str, Any] = {
        "operation": op,
        "api_group": "",
        "api_version": "v1",
        "kind": "Pod",
        "resource": "pods",
        "subresource": "",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "user": USER,
        "obj": obj,
        "old_obj": old,
    }
    args.update(kw)
    return seams.AdmissionRequest(**args)


def hook(name: str, client_config: Obj, **extra: Any) -> Obj:
    h: Obj = {
        "name": name,
        "clientConfig": client_config,
        "rules": [
            {
                "operations": ["CREATE", "UPDATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    h.update(extra)
    return h


async def configure(st: store.Store, key: str, name: str, *hooks: Obj) -> None:
    kind = "MutatingWebhookConfiguration" if key == MWC else "ValidatingWebhookConfiguration"
    obj = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": list(hooks),
    }
    if st.peek(key, "", name) is None:
        await st.create(key, obj)
    else:
        await st.update(key, obj)


@pytest.fixture
async def server(certs: webhooks.Certs) -> AsyncIterator[webhooks.WebhookServer]:
    srv = webhooks.WebhookServer(
        certs,
        lambda r: webhooks.allow(r, [{"op": "add", "path": "/metadata/labels/injected", "value": "yes"}]),
    )
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


# matching


def test_rule_matching() -> None:
    base = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
    r = request(pod())
    assert chain.rule_matches(base, r)
    assert not chain.rule_matches(base, request(pod(), op="UPDATE", old=pod()))
    assert chain.rule_matches({**base, "operations": ["*"]}, request(pod(), op="DELETE", old=pod()))
    assert not chain.rule_matches({**base, "apiGroups": ["apps"]}, r)
    assert not chain.rule_matches({**base, "apiVersions": ["v2"]}, r)
    status = request(pod(), op="CREATE", subresource="status")
    assert not chain.rule_matches(base, status)
    assert chain.rule_matches({**base, "resources": ["pods/status"]}, status)
    assert chain.rule_matches({**base, "resources": ["*/*"]}, status)
    assert chain.rule_matches({**base, "resources": ["pods/*"]}, status)
    assert not chain.rule_matches({**base, "resources": ["*"]}, status)
    assert chain.rule_matches({**base, "scope": "Namespaced"}, r)
    assert not chain.rule_matches({**base, "scope": "Cluster"}, r)
    ns_req = request({"metadata": {"name": "x"}}, resource="namespaces", kind="Namespace", namespace="x")
    assert chain.rule_matches({**base, "resources": ["namespaces"], "scope": "Cluster"}, ns_req)
    assert not chain.rule_matches({**base, "resources": ["namespaces"], "scope": "Namespaced"}, ns_req)


async def test_selectors(st: store.Store) -> None:
    h = chain.Hook("cfg", hook("h", {}, namespaceSelector={"matchLabels": {"inject": "on"}}))
    assert chain.should_call(h, request(pod("ns")), st)
    assert not chain.should_call(h, request(pod("plain")), st)
    h = chain.Hook(
        "cfg",
        hook(
            "h",
            {},
            objectSelector={
                "matchExpressions": [{"key": "sidecar", "operator": "NotIn", "values": ["false"]}]
            },
        ),
    )
    assert chain.should_call(h, request(pod(labels={"app": "x"})), st)
    assert not chain.should_call(h, request(pod(labels={"sidecar": "false"})), st)
    # the old object's labels count too (UPDATE)
    assert chain.should_call(h, request(pod(labels={"sidecar": "false"}), "UPDATE", old=pod()), st)
    h = chain.Hook(
        "cfg", hook("h", {}, objectSelector={"matchExpressions": [{"key": "x", "operator": "Exists"}]})
    )
    assert not chain.should_call(h, request(pod()), st)


def test_review_request_fields() -> None:
    old = pod()
    new = pod(labels={"a": "b"})
    body = chain.review_request(request(new, "UPDATE", old=old, dry_run=True), "uid-1")
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    r = body["request"]
    assert r["uid"] == "uid-1"
    assert r["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert r["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert r["requestKind"] == r["kind"] and r["requestResource"] == r["resource"]
    assert r["name"] == "p" and r["namespace"] == "ns" and r["operation"] == "UPDATE"
    assert r["userInfo"] == {
        "username": "alice",
        "uid": "uid-a",
        "groups": ["devs", "system:authenticated"],
        "extra": {"k": ["v"]},
    }
    assert r["object"] == new and r["oldObject"] == old and r["dryRun"] is True
    assert r["options"] == {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}
    assert "subResource" not in r


def test_response_verification() -> None:
    def raw(resp: Obj, **top: Any) -> bytes:
        return json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp, **top}
        ).encode()

    assert chain.parse_response(raw({"uid": "u", "allowed": True}), "u", True)["allowed"]
    cases = [
        (raw({"uid": "x", "allowed": True}), 'expected response.uid="u", got "x"'),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
            "webhook response was absent",
        ),
        (
            raw({"uid": "u", "allowed": True}, apiVersion="admission.k8s.io/v1beta1"),
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, "
            "got admission.k8s.io/v1beta1, Kind=AdmissionReview",
        ),
        (
            raw({"uid": "u", "allowed": True, "patch": "W10="}),
            "webhook returned response.patch but not response.patchType",
        ),
        (
            raw({"uid": "u", "allowed": True, "patch": "W10=", "patchType": "Merge"}),
            'webhook returned invalid response.patchType of "Merge"',
        ),
    ]
    for body, want in cases:
        with pytest.raises(errors.CallError) as e:
            chain.parse_response(body, "u", True)
        assert str(e.value) == "received invalid webhook response: " + want
    with pytest.raises(errors.CallError, match=r"validating webhook may not return response.patch"):
        chain.parse_response(
            raw({"uid": "u", "allowed": True, "patch": "W10=", "patchType": "JSONPatch"}), "u", False
        )


def test_denial_text() -> None:
    d = chain.denial("v.example.com", {"code": 403, "message": "no privileged pods"})
    assert (
        d.code == 403 and str(d) == 'admission webhook "v.example.com" denied the request: no privileged pods'
    )
    d = chain.denial("v", {"code": 200})
    assert d.code == 400 and str(d) == 'admission webhook "v" denied the request without explanation'


# service resolution


async def test_resolve_service(st: store.Store) -> None:
    with pytest.raises(errors.CallError, match=r'services "hook" not found'):
        webhookclient.resolve_service(st, "ns", "hook", 443)
    await st.create(
        "services",
        {
            "metadata": {"name": "ext", "namespace": "ns"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        },
    )
    with pytest.raises(errors.CallError, match=r'^unsupported service type "ExternalName"$'):
        webhookclient.resolve_service(st, "ns", "ext", 443)
    await st.create(
        "services",
        {
            "metadata": {"name": "hook", "namespace": "ns"},
            "spec": {
                "ports": [
                    {"name": "https-webhook", "port": 443, "targetPort": 9443},
                    {"port": 8443, "targetPort": 7000},
                ]
            },
        },
    )
    with pytest.raises(errors.CallError, match=r'^no service port 444 found for service "hook"$'):
        webhookclient.resolve_service(st, "ns", "hook", 444)
    with pytest.raises(errors.CallError, match=r'^no endpoints available for service "hook"$'):
        webhookclient.resolve_service(st, "ns", "hook", 443)
    await st.create(
        "discovery.k8s.io/endpointslices",
        {
            "metadata": {
                "name": "hook-1",
                "namespace": "ns",
                "labels": {"kubernetes.io/service-name": "hook"},
            },
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["127.0.0.9"], "conditions": {"ready": False}},
                {"addresses": ["127.0.0.7"], "conditions": {"ready": True}},
            ],
            "ports": [{"name": "https-webhook", "port": 9443}, {"name": "", "port": 7000}],
        },
    )
    assert webhookclient.resolve_service(st, "ns", "hook", 443) == ("127.0.0.7", 9443)
    assert webhookclient.resolve_service(st, "ns", "hook", 8443) == ("127.0.0.7", 7000)


# calling


async def test_mutating_webhook_by_url_patches(
    st: store.Store, server: webhooks.WebhookServer, certs: webhooks.Certs
) -> None:
    url = f"https://127.0.0.1:{server.port}/mutate"
    await configure(st, MWC, "a", hook("m.example.com", {"url": url, "caBundle": certs.ca_bundle}))
    adm = chain.Admission(st)
    out = await adm.mutate(request(pod()))
    assert out is not None and out["metadata"]["labels"]["injected"] == "yes"
    assert server.paths == ["/mutate?timeout=10s"]
    assert server.reviews[0]["request"]["object"]["metadata"]["name"] == "p"
    # not matching: another resource
    cm = {"metadata": {"name": "c", "namespace": "ns"}}
    assert await adm.mutate(request(cm, kind="ConfigMap", resource="configmaps")) == cm
    assert len(server.reviews) == 1


async def test_mutating_webhooks_chain_in_order(st: store.Store, certs: webhooks.Certs) -> None:
    def second(review: Obj) -> Obj:
        labels = review["request"]["object"]["metadata"]["labels"]
        return webhooks.allow(
            review, [{"op": "add", "path": "/metadata/labels/second", "value": labels["first"]}]
        )

    first = webhooks.WebhookServer(
        certs, lambda r: webhooks.allow(r, [{"op": "add", "path": "/metadata/labels/first", "value": "1"}])
    )
    sec = webhooks.WebhookServer(certs, second)
    await first.start()
    await sec.start()
    try:
        cc = {"caBundle": certs.ca_bundle}
        await configure(st, MWC, "b-second", hook("second", {**cc, "url": f"https://127.0.0.1:{sec.port}/"}))
        await configure(st, MWC, "a-first", hook("first", {**cc, "url": f"https://127.0.0.1:{first.port}/"}))
        out = await chain.Admission(st).mutate(request(pod()))
        assert out is not None and out["metadata"]["labels"] == {"first": "1", "second": "1"}
    finally:
        await first.stop()
        await sec.stop()


async def test_webhook_through_selectorless_service(
    st: store.Store, server: webhooks.WebhookServer, certs: webhooks.Certs
) -> None:
    await st.create(
        "services",
        {
            "metadata": {"name": "hook", "namespace": "ns"},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 9443}]},
        },
    )
    await st.create(
        "discovery.k8s.io/endpointslices",
        {
            "metadata": {
                "name": "hook-x",
                "namespace": "ns",
                "labels": {"kubernetes.io/service-name": "hook"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": server.port}],
        },
    )
    svc = {
        "service": {"name": "hook", "namespace": "ns", "path": "/inject/cluster/c2"},
        "caBundle": certs.ca_bundle,
    }
    await configure(st, MWC, "svc", hook("s.example.com", svc))
    out = await chain.Admission(st).mutate(request(pod()))
    assert out is not None and out["metadata"]["labels"]["injected"] == "yes"
    assert server.paths == ["/inject/cluster/c2?timeout=10s"]


async def test_failures_read_like_kubernetes(st: store.Store, certs: webhooks.Certs) -> None:
    adm = chain.Admission(st)
    # nothing listens on this port
    srv = webhooks.WebhookServer(certs, webhooks.allow)
    port = await srv.start()
    await srv.stop()
    url = f"https://127.0.0.1:{port}/x"
    await configure(st, MWC, "down", hook("down.example.com", {"url": url, "caBundle": certs.ca_bundle}))
    with pytest.raises(seams.AdmissionDenied) as e:
        await adm.mutate(request(pod()))
    assert e.value.code == 500
    assert str(e.value) == (
        f'Internal error occurred: failed calling webhook "down.example.com": failed to call webhook: '
        f'Post "{url}?timeout=10s": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )
    # failurePolicy Ignore: the request goes on unchanged
    await configure(
        st,
        MWC,
        "down",
        hook("down.example.com", {"url": url, "caBundle": certs.ca_bundle}, failurePolicy="Ignore"),
    )
    assert await adm.mutate(request(pod())) == pod()

    await st.create(
        "services",
        {
            "metadata": {"name": "ext", "namespace": "ns"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        },
    )
    await configure(st, MWC, "down", hook("ext.example.com", {"service": {"name": "ext", "namespace": "ns"}}))
    with pytest.raises(seams.AdmissionDenied) as e:
        await adm.mutate(request(pod()))
    assert str(e.value) == (
        'Internal error occurred: failed calling webhook "ext.example.com": failed to call webhook: '
        'Post "https://ext.ns.svc:443?timeout=10s": unsupported service type "ExternalName"'
    )


async def test_tls_verification(
    st: store.Store, server: webhooks.WebhookServer, certs: webhooks.Certs
) -> None:
    adm = chain.Admission(st)
    url = f"https://127.0.0.1:{server.port}/"
    other = webhooks.make_certs(["elsewhere"])
    for bundle in (other.ca_bundle, ""):  # a wrong CA, and no CA (system roots) both fail
        await configure(st, MWC, "tls", hook("tls.example.com", {"url": url, "caBundle": bundle}))
        with pytest.raises(seams.AdmissionDenied) as e:
            await adm.mutate(request(pod()))
        assert "x509: certificate signed by unknown authority" in str(e.value)
    await configure(st, MWC, "tls", hook("tls.example.com", {"url": url, "caBundle": "bm90IGEgcGVt"}))
    with pytest.raises(seams.AdmissionDenied, match=r"unable to load root certificates"):
        await adm.mutate(request(pod()))
    assert server.reviews == []
    # the certificate must name the host dialled
    named = webhooks.make_certs(["only.example"], ips=[])
    srv = webhooks.WebhookServer(named, webhooks.allow)
    await srv.start()
    try:
        url = f"https://127.0.0.1:{srv.port}/"
        await configure(st, MWC, "tls", hook("tls.example.com", {"url": url, "caBundle": named.ca_bundle}))
        with pytest.raises(seams.AdmissionDenied) as e:
            await adm.mutate(request(pod()))
        assert str(e.value).endswith("x509: certificate is not valid for 127.0.0.1")
        assert srv.reviews == []
    finally:
        await srv.stop()
    # and localhost, which is in the first server's certificate, works
    url = f"https://localhost:{server.port}/"
    await configure(st, MWC, "tls", hook("tls.example.com", {"url": url, "caBundle": certs.ca_bundle}))
    assert (await adm.mutate(request(pod())) or {})["metadata"]["labels"]["injected"] == "yes"


async def test_timeout(st: store.Store, certs: webhooks.Certs) -> None:
    release = asyncio.Event()

    async def slow(review: Obj) -> Obj:
        await release.wait()
        return webhooks.allow(review)

    srv = webhooks.WebhookServer(certs, slow)
    await srv.start()
    try:
        url = f"https://127.0.0.1:{srv.port}/slow"
        await configure(
            st,
            MWC,
            "slow",
            hook("slow.example.com", {"url": url, "caBundle": certs.ca_bundle}, timeoutSeconds=1),
        )
        with pytest.raises(seams.AdmissionDenied) as e:
            await chain.Admission(st).mutate(request(pod()))
        assert str(e.value).endswith(f'Post "{url}?timeout=1s": context deadline exceeded')
    finally:
        release.set()
        await srv.stop()


async def test_validating_webhook_denies(st: store.Store, certs: webhooks.Certs) -> None:
    srv = webhooks.WebhookServer(certs, lambda r: webhooks.deny(r, "pods named p are not allowed", 403))
    await srv.start()
    try:
        url = f"https://127.0.0.1:{srv.port}/validate"
        await configure(st, VWC, "v", hook("v.example.com", {"url": url, "caBundle": certs.ca_bundle}))
        adm = chain.Admission(st)
        with pytest.raises(seams.AdmissionDenied) as e:
            await adm.validate(request(pod()))
        assert e.value.code == 403
        assert (
            str(e.value)
            == 'admission webhook "v.example.com" denied the request: pods named p are not allowed'
        )
        # a dry run against a webhook with side effects is refused before calling it
        await configure(
            st,
            VWC,
            "v",
            hook("v.example.com", {"url": url, "caBundle": certs.ca_bundle}, sideEffects="Unknown"),
        )
        with pytest.raises(
            seams.AdmissionDenied, match=r'admission webhook "v.example.com" does not support dry run'
        ):
            await adm.validate(request(pod(), dry_run=True))
        assert len(srv.reviews) == 1
    finally:
        await srv.stop()


async def test_bad_patches_are_internal_errors(st: store.Store, certs: webhooks.Certs) -> None:
    bad = [{"op": "remove", "path": "/metadata/nope"}]
    srv = webhooks.WebhookServer(certs, lambda r: webhooks.allow(r, bad))
    await srv.start()
    try:
        await configure(
            st,
            MWC,
            "bad",
            hook("bad.example.com", {"url": f"https://127.0.0.1:{srv.port}/", "caBundle": certs.ca_bundle}),
        )
        with pytest.raises(seams.AdmissionDenied) as e:
            await chain.Admission(st).mutate(request(pod()))
        assert e.value.code == 500 and str(e.value).startswith("Internal error occurred: ")
    finally:
        await srv.stop()
    assert chain.apply_patch("h", {"a": 1}, base64.b64encode(b"[]").decode()) == {"a": 1}


async def test_service_account_defaulting(st: store.Store) -> None:
    p = pod()
    p["spec"].pop("automountServiceAccountToken")
    out = await chain.Admission(st).mutate(request(p))
    assert out is not None
    spec = out["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    vol = spec["volumes"][0]
    assert vol["name"].startswith("kube-api-access-")
    sources = vol["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": vol["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    ]
    # an explicit account is kept; automount false (pod or account) mounts nothing
    await st.create(
        "serviceaccounts",
        {"metadata": {"name": "quiet", "namespace": "ns"}, "automountServiceAccountToken": False},
    )
    q = pod()
    q["spec"] = {"serviceAccountName": "quiet", "containers": [{"name": "c", "image": "i"}]}
    out = await chain.Admission(st).mutate(request(q))
    assert out is not None and out["spec"]["serviceAccountName"] == "quiet" and "volumes" not in out["spec"]
    # updates are left alone
    assert await chain.Admission(st).mutate(request(p, "UPDATE", old=p)) == p


json_values = hs.recursive(
    hs.none() | hs.booleans() | hs.integers(-5, 70000) | hs.text(max_size=12),
    lambda inner: hs.lists(inner, max_size=3) | hs.dictionaries(hs.text(max_size=10), inner, max_size=3),
    max_leaves=12,
)
rule_parts = hs.fixed_dictionaries(
    {},
    optional={
        "operations": hs.lists(hs.sampled_from(["CREATE", "UPDATE", "*", "X"])) | json_values,
        "apiGroups": hs.lists(hs.sampled_from(["", "*", "apps"])) | json_values,
        "apiVersions": hs.lists(hs.sampled_from(["v1", "*"])) | json_values,
        "resources": hs.lists(hs.sampled_from(["pods", "*", "*/*", "pods/status"])) | json_values,
        "scope": hs.sampled_from(["*", "Namespaced", "Cluster", "bogus"]) | json_values,
    },
)
selector = (
    hs.fixed_dictionaries(
        {},
        optional={
            "matchLabels": hs.dictionaries(hs.sampled_from(["inject", "a"]), hs.sampled_from(["on", "x"]))
            | json_values,
            "matchExpressions": hs.lists(
                hs.fixed_dictionaries(
                    {
                        "key": hs.sampled_from(["inject", "a"]) | json_values,
                        "operator": hs.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Bad"])
                        | json_values,
                        "values": hs.lists(hs.sampled_from(["on", "x"])) | json_values,
                    }
                ),
                max_size=2,
            )
            | json_values,
        },
    )
    | json_values
)
client_configs = (
    hs.sampled_from(
        [
            {"url": "https://127.0.0.1:1/closed"},
            {"url": "http://127.0.0.1:1/plain"},
            {"url": "https://"},
            {"service": {"name": "missing", "namespace": "ns"}},
            {"service": {"name": "missing", "namespace": "ns", "port": "443"}},
            {"service": ["x"]},
            {"caBundle": "%%%", "url": "https://127.0.0.1:1/"},
            {},
        ]
    )
    | json_values
)
hook_specs = hs.fixed_dictionaries(
    {"name": hs.text(max_size=10) | json_values},
    optional={
        "rules": hs.lists(rule_parts | json_values, max_size=2) | json_values,
        "clientConfig": client_configs,
        "namespaceSelector": selector,
        "objectSelector": selector,
        "failurePolicy": hs.sampled_from(["Fail", "Ignore"]) | json_values,
        "timeoutSeconds": hs.integers(-1, 40) | json_values,
        "sideEffects": hs.sampled_from(["None", "Unknown"]) | json_values,
    },
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=hs.lists(hook_specs | json_values, max_size=3), validating=hs.booleans())
async def test_garbage_configurations_never_crash(
    st: store.Store, specs: list[Any], validating: bool
) -> None:
    key = VWC if validating else MWC
    cfg = {"metadata": {"name": "garbage"}, "webhooks": specs}
    if st.peek(key, "", "garbage") is None:
        await st.create(key, cfg)
    else:
        await st.update(key, cfg)
    adm = chain.Admission(st)
    req = request(pod(labels={"a": "x"}))
    try:
        if validating:
            await adm.validate(req)
        else:
            out = await adm.mutate(req)
            assert out is not None and out["metadata"]["name"] == "p"
    except seams.AdmissionDenied as e:
        assert e.code >= 400 and str(e)


@settings(max_examples=200, deadline=None)
@given(raw=hs.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_garbage_responses_are_call_errors(raw: bytes) -> None:
    try:
        chain.parse_response(raw, "u", True)
    except errors.CallError as e:
        assert str(e)


async def test_admission_review_versions(
    st: store.Store, server: webhooks.WebhookServer, certs: webhooks.Certs
) -> None:
    url = f"https://127.0.0.1:{server.port}/mutate"
    cc = {"url": url, "caBundle": certs.ca_bundle}
    await configure(st, MWC, "ver", hook("old.example.com", cc, admissionReviewVersions=["v1beta1"]))
    out = await chain.Admission(st).mutate(request(pod()))
    assert server.reviews[-1]["apiVersion"] == "admission.k8s.io/v1beta1"
    assert out is not None and out["metadata"]["labels"]["injected"] == "yes"
    await configure(
        st, MWC, "ver", hook("new.example.com", cc, admissionReviewVersions=["v2", "v1", "v1beta1"])
    )
    await chain.Admission(st).mutate(request(pod()))
    assert server.reviews[-1]["apiVersion"] == "admission.k8s.io/v1"
    await configure(st, MWC, "ver", hook("none.example.com", cc, admissionReviewVersions=["v2"]))
    with pytest.raises(seams.AdmissionDenied) as e:
        await chain.Admission(st).mutate(request(pod()))
    assert str(e.value) == (
        'Internal error occurred: failed calling webhook "none.example.com": '
        "could not create admission objects: webhook does not accept known AdmissionReview versions"
    )
    assert len(server.reviews) == 2
