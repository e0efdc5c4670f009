"""Service-account tokens end to end: TokenRequest, TokenReview, kubectl create token, legacy
token Secrets, and every way a token stops being valid."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.models.authentication_v1 import BoundObjectReference, TokenRequestSpec, TokenReviewSpec
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.authentication_v1 import TokenReview
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod, Secret, ServiceAccount

from meshplane.devcluster.auth import tokens
from tests.support import clusters, wait
from tests.support.clusters import kubectl

API_AUD = "https://kubernetes.default.svc.cluster.local"


async def make_sa(client: Any, ns: str, name: str = "app") -> Any:
    return await client.create(ServiceAccount(metadata=ObjectMeta(name=name, namespace=ns)))


async def request_token(client: Any, ns: str, sa: str, **spec: Any) -> str:
    req = ServiceAccount.Token(
        metadata=ObjectMeta(), spec=TokenRequestSpec(audiences=spec.pop("audiences", []), **spec)
    )
    out = await client.create(req, name=sa, namespace=ns)
    return str(out.status.token)


async def review(client: Any, token: str, audiences: list[str] | None = None) -> Any:
    out = await client.create(TokenReview(spec=TokenReviewSpec(token=token, audiences=audiences)))
    return out.status


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


async def test_token_request_and_review_round_trip(client: Any, ns: str) -> None:
    sa = await make_sa(client, ns)
    pod = await client.create(
        Pod(
            metadata=ObjectMeta(name="p", namespace=ns),
            spec=PodSpec(serviceAccountName="app", containers=[Container(name="c", image="i")]),
        )
    )
    token = await request_token(
        client,
        ns,
        "app",
        audiences=["istio-ca"],
        expirationSeconds=43200,
        boundObjectRef=BoundObjectReference(kind="Pod", apiVersion="v1", name="p", uid=pod.metadata.uid),
    )
    c = claims(token)
    assert c["iss"] == API_AUD and c["aud"] == ["istio-ca"] and c["exp"] - c["iat"] == 43200
    assert c["kubernetes.io"]["pod"] == {"name": "p", "uid": pod.metadata.uid}

    status = await review(client, token, ["istio-ca"])
    assert status.authenticated is True
    assert status.audiences == ["istio-ca"]
    assert status.user.username == f"system:serviceaccount:{ns}:app"
    assert status.user.uid == sa.metadata.uid
    assert status.user.groups == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{ns}",
        "system:authenticated",
    ]
    assert status.user.extra["authentication.kubernetes.io/pod-name"] == ["p"]
    assert status.user.extra["authentication.kubernetes.io/pod-uid"] == [pod.metadata.uid]
    assert status.user.extra["authentication.kubernetes.io/credential-id"] == [f"JTI={c['jti']}"]

    # the same token is not valid for the API audience: an answer, not an HTTP error
    status = await review(client, token)
    assert status.authenticated is None
    assert status.error == (
        '[invalid bearer token, token audiences ["istio-ca"] is invalid '
        f'for the target audiences ["{API_AUD}"]]'
    )
    # deleting the bound pod invalidates the token
    await client.delete(Pod, "p", namespace=ns, grace_period=0)
    status = await review(client, token, ["istio-ca"])
    assert not status.authenticated
    assert status.error == "[invalid bearer token, service account token has been invalidated]"


async def test_token_request_validation(client: Any, ns: str) -> None:
    await make_sa(client, ns)
    with pytest.raises(ApiError) as e:
        await request_token(client, ns, "app", expirationSeconds=60)
    assert e.value.status.code == 422
    assert e.value.status.message == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: '
        "may not specify a duration less than 10 minutes"
    )
    with pytest.raises(ApiError) as e:
        await request_token(client, ns, "missing")
    assert e.value.status.code == 404 and e.value.status.message == 'serviceaccounts "missing" not found'
    token = await request_token(client, ns, "app")
    assert claims(token)["aud"] == [API_AUD] and claims(token)["exp"] - claims(token)["iat"] == 3600


async def test_invalid_tokens_are_unauthenticated(
    cluster: clusters.ThreadedCluster, client: Any, ns: str
) -> None:
    sa = await make_sa(client, ns)
    key = cluster.cluster.security.signing_key
    now = time.time()
    sa_obj = {"metadata": {"namespace": ns, "name": "app", "uid": sa.metadata.uid}}
    expired = key.sign(tokens.bound_claims(sa_obj, [API_AUD], 600, now - 7200))
    status = await review(client, expired)
    assert (
        not status.authenticated
        and status.error == "[invalid bearer token, service account token has expired]"
    )

    forged = tokens.generate_key().sign(tokens.bound_claims(sa_obj, [API_AUD], 3600, now))
    status = await review(client, forged)
    assert (
        not status.authenticated
        and status.error == "[invalid bearer token, invalid signature, no keys found]"
    )

    status = await review(client, "not-a-token")
    assert not status.authenticated and status.error == "invalid bearer token"

    good = await request_token(client, ns, "app")
    assert (await review(client, good)).authenticated
    await client.delete(ServiceAccount, "app", namespace=ns)
    status = await review(client, good)
    assert (
        not status.authenticated and status.error == '[invalid bearer token, serviceaccounts "app" not found]'
    )
    await make_sa(client, ns)  # same name, new uid: the old token stays invalid
    status = await review(client, good)
    assert not status.authenticated and "does not match claim" in status.error


async def test_admin_token_in_review(cluster: clusters.ThreadedCluster, client: Any) -> None:
    status = await review(client, cluster.cluster.admin_token)
    assert status.authenticated and status.user.username == "kubernetes-admin"
    assert status.user.groups == ["system:masters", "system:authenticated"]


def test_kubectl_create_token(cluster: clusters.ThreadedCluster, kubeconfig_path: Path, ns: str) -> None:
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot", "namespace": ns}}
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=json.dumps(sa))
    out = kubectl(
        kubeconfig_path, "create", "token", "robot", "-n", ns, "--audience", "vault", "--duration", "20m"
    ).stdout.strip()
    c = claims(out)
    assert c["aud"] == ["vault"] and c["exp"] - c["iat"] == 1200
    assert c["sub"] == f"system:serviceaccount:{ns}:robot"
    short = kubectl(kubeconfig_path, "create", "token", "robot", "-n", ns, "--duration", "1m", check=False)
    assert short.returncode != 0
    assert "may not specify a duration less than 10 minutes" in short.stderr
    # a token for the API works as kubectl's credential
    api_token = kubectl(kubeconfig_path, "create", "token", "robot", "-n", ns).stdout.strip()
    denied = kubectl(kubeconfig_path, "get", "pods", "-n", ns, "--token", api_token, check=False)
    assert "Forbidden" in denied.stderr and f"system:serviceaccount:{ns}:robot" in denied.stderr


async def test_default_serviceaccount_and_root_ca(
    cluster: clusters.ThreadedCluster, client: Any, ns: str
) -> None:
    await wait.wait_for(lambda: _exists(client, ServiceAccount, "default", ns), what="default serviceaccount")
    cm = await wait.wait_for(
        lambda: _exists(client, ConfigMap, "kube-root-ca.crt", ns), what="kube-root-ca.crt"
    )
    assert cm.data == {"ca.crt": cluster.cluster.ca_pem.decode()}
    await client.delete(ConfigMap, "kube-root-ca.crt", namespace=ns)
    await wait.wait_for(
        lambda: _exists(client, ConfigMap, "kube-root-ca.crt", ns), what="republished root ca"
    )
    await client.delete(ServiceAccount, "default", namespace=ns)
    await wait.wait_for(lambda: _exists(client, ServiceAccount, "default", ns), what="recreated default sa")
    pod = await client.create(
        Pod(
            metadata=ObjectMeta(name="p", namespace=ns),
            spec=PodSpec(containers=[Container(name="c", image="i")]),
        )
    )
    assert pod.spec.serviceAccountName == "default"
    mounts = pod.spec.containers[0].volumeMounts
    assert mounts[0].mountPath == "/var/run/secrets/kubernetes.io/serviceaccount"
    # the default namespaces have them too
    assert await _exists(client, ServiceAccount, "default", "kube-system")


async def _exists(client: Any, kind: Any, name: str, ns: str) -> Any:
    try:
        return await client.get(kind, name, namespace=ns)
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


async def test_legacy_token_secret(cluster: clusters.ThreadedCluster, client: Any, ns: str) -> None:
    sa = await make_sa(client, ns, "reader")
    await client.create(
        Secret(
            metadata=ObjectMeta(
                name="reader-token",
                namespace=ns,
                annotations={"kubernetes.io/service-account.name": "reader"},
            ),
            type="kubernetes.io/service-account-token",
        )
    )

    async def filled() -> Any:
        s = await client.get(Secret, "reader-token", namespace=ns)
        return s if s.data and "token" in s.data else None

    secret = await wait.wait_for(filled, what="token secret filled")
    assert base64.b64decode(secret.data["ca.crt"]) == cluster.cluster.ca_pem
    assert base64.b64decode(secret.data["namespace"]).decode() == ns
    assert secret.metadata.annotations["kubernetes.io/service-account.uid"] == sa.metadata.uid
    token = base64.b64decode(secret.data["token"]).decode()
    assert claims(token)["iss"] == "kubernetes/serviceaccount" and "exp" not in claims(token)
    status = await review(client, token)
    assert status.authenticated and status.user.username == f"system:serviceaccount:{ns}:reader"
    # as a client credential
    cfg = cluster.kubeconfig
    cfg["users"][0]["user"]["token"] = token
    sa_client = clusters.lightkube_client(cfg)
    try:
        with pytest.raises(ApiError) as e:
            await sa_client.get(Namespace, ns)
        assert e.value.status.code == 403
    finally:
        await sa_client.close()
    # deleting the ServiceAccount deletes its token Secrets, and the token dies with them
    await client.delete(ServiceAccount, "reader", namespace=ns)
    await wait.wait_for(lambda: _gone(client, Secret, "reader-token", ns), what="token secret deleted")
    assert not (await review(client, token)).authenticated


async def _gone(client: Any, kind: Any, name: str, ns: str) -> bool:
    return await _exists(client, kind, name, ns) is None


def test_restart_with_data_dir_keeps_tokens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    c = clusters.ThreadedCluster(name="restart", data_dir=data).start()
    try:
        kc = c.write_kubeconfig(tmp_path / "kc")
        sa = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "keep", "namespace": "default"},
        }
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "keep-token",
                "namespace": "default",
                "annotations": {"kubernetes.io/service-account.name": "keep"},
            },
        }
        kubectl(kc, "apply", "-f", "-", input_text=json.dumps(sa))
        kubectl(kc, "apply", "-f", "-", input_text=json.dumps(secret))
        bound = kubectl(kc, "create", "token", "keep", "-n", "default").stdout.strip()
        legacy = wait.wait_until(
            lambda: (
                kubectl(
                    kc, "get", "secret", "keep-token", "-n", "default", "-o", "jsonpath={.data.token}"
                ).stdout
            ),
            what="legacy token filled",
        )
        assert (data / tokens.KEY_FILE).stat().st_mode & 0o777 == 0o600

        c.stop()
        c.start()
        for token in (bound, base64.b64decode(legacy).decode()):
            review_obj = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            }
            out = json.loads(
                kubectl(kc, "create", "-f", "-", "-o", "json", input_text=json.dumps(review_obj)).stdout
            )
            assert out["status"]["authenticated"] is True
            assert out["status"]["user"]["username"] == "system:serviceaccount:default:keep"
            # and as a credential: authenticated (403 from RBAC), not 401
            denied = kubectl(kc, "get", "secrets", "-n", "default", "--token", token, check=False)
            assert "(Forbidden)" in denied.stderr
    finally:
        c.close()
