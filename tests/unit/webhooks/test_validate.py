"""The validation webhook's answers: what is checked, how the denial names the field, what passes."""

from __future__ import annotations

import json
from typing import Any

from meshplane.discovery.webhook import check_config
from meshplane.webhooks import validate


def review(obj: Any, operation: str = "CREATE", namespace: str = "sample") -> bytes:
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u1", "operation": operation, "namespace": namespace, "object": obj},
        }
    ).encode()


def ap(spec: dict[str, Any]) -> dict[str, Any]:
    # as kubectl sends it: no namespace in the object, the request carries it
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "x"},
            "spec": spec}  # fmt: skip


def test_an_invalid_policy_is_denied_naming_object_and_field() -> None:
    v = validate.Validator(check_config)
    out = v.review(review(ap({"action": "CUSTOM"})))["response"]
    assert out["allowed"] is False and out["uid"] == "u1"
    assert out["status"]["message"] == (
        "configuration is invalid: AuthorizationPolicy sample/x: spec.action: "
        "CUSTOM (external) authorization is not implemented by meshplane"
    )
    assert v.denied == 1


def test_valid_objects_deletes_and_unread_kinds_are_allowed() -> None:
    v = validate.Validator(check_config)
    assert v.review(review(ap({})))["response"]["allowed"] is True
    assert v.review(review(ap({"action": "CUSTOM"}), operation="DELETE"))["response"]["allowed"] is True
    telemetry = {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "t"},
        "spec": {},
    }
    out = v.review(review(telemetry))["response"]
    assert out["allowed"] is True
    assert out["warnings"] == ["meshplane does not read Telemetry (telemetry.istio.io); it was not validated"]


def test_an_invalid_gateway_is_denied_as_the_readiness_probe_expects() -> None:
    gw = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "invalid-gateway"},
          "spec": {}}  # fmt: skip
    out = validate.Validator(check_config).review(review(gw))["response"]
    assert out["allowed"] is False and "spec.servers: is required" in out["status"]["message"]


def test_bad_reviews_are_answered_not_raised() -> None:
    v = validate.Validator(check_config)
    assert v.review(b"not json")["response"]["allowed"] is False
    out = v.review(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode())
    assert out["response"]["allowed"] is False and "no request" in out["response"]["status"]["message"]
