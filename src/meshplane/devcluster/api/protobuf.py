"""Kubernetes' protobuf (`application/vnd.kubernetes.protobuf`): decoding request bodies, and
encoding the metadata-only representations (`as=PartialObjectMetadata[List]`, their watch events).

Since 1.31 client-go's typed clients send built-in objects as protobuf, so `kubectl create
namespace|configmap|secret|serviceaccount|service|role|rolebinding|deployment|token` POST protobuf
(with no JSON fallback). The envelope is `k8s\\0` + runtime.Unknown{typeMeta, raw}; `raw` is the
object in the wire format of k8s.io/api's generated.proto. The tables below list the field numbers
of the messages those commands send (and `kubectl create job|cronjob|ingress|poddisruptionbudget|
priorityclass|quota`); a field outside them is refused (415) rather than dropped.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from meshplane.devcluster import errors
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# "Empty" stands for messages taken as {} (status on create, empty resources): any non-zero field
# in them is refused. Field spec: number -> (json name, type). Types: "s" string, "b" bytes (base64
# in JSON), "i" varint int, "?" bool, "t" Time, "mt" MicroTime, "ios" IntOrString, "{}s"
# map<string,string>, "{}b" map<string,bytes>, "{}q" map<string,Quantity>, a message name; a
# leading "*" marks a repeated field, a trailing "!" a pointer field whose zero value is kept (proto2
# optional that Go sets explicitly); the json name "" marks a Go struct inlined in its parent.
_MSG: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {
        1: ("typeMeta", "TypeMeta"),
        2: ("raw", "b"),
        3: ("contentEncoding", "s"),
        4: ("contentType", "s"),
    },
    "TypeMeta": {1: ("apiVersion", "s"), 2: ("kind", "s")},
    "ObjectMeta": {
        1: ("name", "s"),
        2: ("generateName", "s"),
        3: ("namespace", "s"),
        4: ("selfLink", "s"),
        5: ("uid", "s"),
        6: ("resourceVersion", "s"),
        7: ("generation", "i"),
        8: ("creationTimestamp", "t"),
        9: ("deletionTimestamp", "t"),
        10: ("deletionGracePeriodSeconds", "i!"),
        11: ("labels", "{}s"),
        12: ("annotations", "{}s"),
        13: ("ownerReferences", "*OwnerReference"),
        14: ("finalizers", "*s"),
        17: ("managedFields", "*ManagedFieldsEntry"),
    },
    "ManagedFieldsEntry": {
        1: ("manager", "s"),
        2: ("operation", "s"),
        3: ("apiVersion", "s"),
        4: ("time", "t"),
        6: ("fieldsType", "s"),
        7: ("fieldsV1", "FieldsV1"),
        8: ("subresource", "s"),
    },
    "FieldsV1": {1: ("raw", "b")},
    "OwnerReference": {
        1: ("kind", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("controller", "?!"),
        7: ("blockOwnerDeletion", "?!"),
    },
    "LabelSelector": {1: ("matchLabels", "{}s"), 2: ("matchExpressions", "*LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "*s")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "Empty")},
    "NamespaceSpec": {1: ("finalizers", "*s")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "{}s"),
        3: ("binaryData", "{}b"),
        4: ("immutable", "?!"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "{}b"),
        3: ("type", "s"),
        4: ("stringData", "{}s"),
        5: ("immutable", "?!"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", "*ObjectReference"),
        3: ("imagePullSecrets", "*LocalObjectReference"),
        4: ("automountServiceAccountToken", "?!"),
    },
    "ObjectReference": {
        1: ("kind", "s"),
        2: ("namespace", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("resourceVersion", "s"),
        7: ("fieldPath", "s"),
    },
    "LocalObjectReference": {1: ("name", "s")},
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec"), 3: ("status", "Empty")},
    "TokenRequestSpec": {
        1: ("audiences", "*s"),
        3: ("boundObjectRef", "BoundObjectReference"),
        4: ("expirationSeconds", "i!"),
    },
    "BoundObjectReference": {1: ("kind", "s"), 2: ("apiVersion", "s"), 3: ("name", "s"), 4: ("uid", "s")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"), 3: ("status", "Empty")},
    "ServiceSpec": {
        1: ("ports", "*ServicePort"),
        2: ("selector", "{}s"),
        3: ("clusterIP", "s"),
        4: ("type", "s"),
        5: ("externalIPs", "*s"),
        7: ("sessionAffinity", "s"),
        8: ("loadBalancerIP", "s"),
        9: ("loadBalancerSourceRanges", "*s"),
        10: ("externalName", "s"),
        11: ("externalTrafficPolicy", "s"),
        12: ("healthCheckNodePort", "i"),
        13: ("publishNotReadyAddresses", "?"),
        17: ("ipFamilyPolicy", "s"),
        18: ("clusterIPs", "*s"),
        19: ("ipFamilies", "*s"),
        20: ("allocateLoadBalancerNodePorts", "?!"),
        21: ("loadBalancerClass", "s"),
        22: ("internalTrafficPolicy", "s"),
    },
    "ServicePort": {
        1: ("name", "s"),
        2: ("protocol", "s"),
        3: ("port", "i"),
        4: ("targetPort", "ios"),
        5: ("nodePort", "i"),
        6: ("appProtocol", "s"),
    },
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "*PolicyRule")},
    "ClusterRole": {
        1: ("metadata", "ObjectMeta"),
        2: ("rules", "*PolicyRule"),
        3: ("aggregationRule", "AggregationRule"),
    },
    "AggregationRule": {1: ("clusterRoleSelectors", "*LabelSelector")},
    "PolicyRule": {
        1: ("verbs", "*s"),
        2: ("apiGroups", "*s"),
        3: ("resources", "*s"),
        4: ("resourceNames", "*s"),
        5: ("nonResourceURLs", "*s"),
    },
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "*Subject"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {
        1: ("metadata", "ObjectMeta"),
        2: ("subjects", "*Subject"),
        3: ("roleRef", "RoleRef"),
    },
    "Subject": {1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")},
    "RoleRef": {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")},
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec"), 3: ("status", "Empty")},
    "DeploymentSpec": {
        1: ("replicas", "i!"),
        2: ("selector", "LabelSelector"),
        3: ("template", "PodTemplateSpec"),
        4: ("strategy", "DeploymentStrategy"),
        5: ("minReadySeconds", "i"),
        6: ("revisionHistoryLimit", "i!"),
        7: ("paused", "?"),
        9: ("progressDeadlineSeconds", "i!"),
    },
    "DeploymentStrategy": {1: ("type", "s"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "ios"), 2: ("maxSurge", "ios")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {
        2: ("containers", "*Container"),
        3: ("restartPolicy", "s"),
        4: ("terminationGracePeriodSeconds", "i!"),
        6: ("dnsPolicy", "s"),
        7: ("nodeSelector", "{}s"),
        8: ("serviceAccountName", "s"),
        9: ("serviceAccount", "s"),
        10: ("nodeName", "s"),
        11: ("hostNetwork", "?"),
        12: ("hostPID", "?"),
        13: ("hostIPC", "?"),
        14: ("securityContext", "Empty"),
        16: ("hostname", "s"),
        17: ("subdomain", "s"),
        19: ("schedulerName", "s"),
        20: ("initContainers", "*Container"),
        24: ("priorityClassName", "s"),
    },
    "Container": {
        1: ("name", "s"),
        2: ("image", "s"),
        3: ("command", "*s"),
        4: ("args", "*s"),
        5: ("workingDir", "s"),
        6: ("ports", "*ContainerPort"),
        7: ("env", "*EnvVar"),
        8: ("resources", "Empty"),
        13: ("terminationMessagePath", "s"),
        14: ("imagePullPolicy", "s"),
        16: ("stdin", "?"),
        17: ("stdinOnce", "?"),
        18: ("tty", "?"),
        20: ("terminationMessagePolicy", "s"),
    },
    "ContainerPort": {
        1: ("name", "s"),
        2: ("hostPort", "i"),
        3: ("containerPort", "i"),
        4: ("protocol", "s"),
        5: ("hostIP", "s"),
    },
    "EnvVar": {1: ("name", "s"), 2: ("value", "s")},
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "i!"),
        2: ("preconditions", "Preconditions"),
        3: ("orphanDependents", "?!"),
        4: ("propagationPolicy", "s"),
        5: ("dryRun", "*s"),
    },
    "Preconditions": {1: ("uid", "s"), 2: ("resourceVersion", "s")},
    # policy/v1 Eviction (kubectl drain, client-go's EvictV1)
    "Eviction": {1: ("metadata", "ObjectMeta"), 2: ("deleteOptions", "DeleteOptions")},
    # kubectl 1.32's `create job|cronjob|ingress|poddisruptionbudget|priorityclass|quota`
    # (k8s.io/api batch/v1, networking/v1, policy/v1, scheduling/v1, core/v1 generated.proto)
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec"), 3: ("status", "Empty")},
    "JobSpec": {
        1: ("parallelism", "i!"),
        2: ("completions", "i!"),
        3: ("activeDeadlineSeconds", "i!"),
        4: ("selector", "LabelSelector"),
        5: ("manualSelector", "?!"),
        6: ("template", "PodTemplateSpec"),
        7: ("backoffLimit", "i!"),
        8: ("ttlSecondsAfterFinished", "i!"),
        9: ("completionMode", "s!"),
        10: ("suspend", "?!"),
        12: ("backoffLimitPerIndex", "i!"),
        13: ("maxFailedIndexes", "i!"),
        14: ("podReplacementPolicy", "s!"),
        15: ("managedBy", "s!"),
    },
    "CronJob": {1: ("metadata", "ObjectMeta"), 2: ("spec", "CronJobSpec"), 3: ("status", "Empty")},
    "CronJobSpec": {
        1: ("schedule", "s"),
        2: ("startingDeadlineSeconds", "i!"),
        3: ("concurrencyPolicy", "s"),
        4: ("suspend", "?!"),
        5: ("jobTemplate", "JobTemplateSpec"),
        6: ("successfulJobsHistoryLimit", "i!"),
        7: ("failedJobsHistoryLimit", "i!"),
        8: ("timeZone", "s!"),
    },
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    "Ingress": {1: ("metadata", "ObjectMeta"), 2: ("spec", "IngressSpec"), 3: ("status", "Empty")},
    "IngressSpec": {
        1: ("defaultBackend", "IngressBackend"),
        2: ("tls", "*IngressTLS"),
        3: ("rules", "*IngressRule"),
        4: ("ingressClassName", "s!"),
    },
    "IngressBackend": {3: ("resource", "TypedLocalObjectReference"), 4: ("service", "IngressServiceBackend")},
    "TypedLocalObjectReference": {1: ("apiGroup", "s!"), 2: ("kind", "s"), 3: ("name", "s")},
    "IngressServiceBackend": {1: ("name", "s"), 2: ("port", "ServiceBackendPort")},
    "ServiceBackendPort": {1: ("name", "s"), 2: ("number", "i")},
    "IngressTLS": {1: ("hosts", "*s"), 2: ("secretName", "s")},
    "IngressRule": {1: ("host", "s"), 2: ("", "IngressRuleValue")},  # "": inlined in JSON
    "IngressRuleValue": {1: ("http", "HTTPIngressRuleValue")},
    "HTTPIngressRuleValue": {1: ("paths", "*HTTPIngressPath")},
    "HTTPIngressPath": {1: ("path", "s"), 2: ("backend", "IngressBackend"), 3: ("pathType", "s!")},
    "PodDisruptionBudget": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "PodDisruptionBudgetSpec"),
        3: ("status", "Empty"),
    },
    "PodDisruptionBudgetSpec": {
        1: ("minAvailable", "ios"),
        2: ("selector", "LabelSelector"),
        3: ("maxUnavailable", "ios"),
        4: ("unhealthyPodEvictionPolicy", "s!"),
    },
    "PriorityClass": {
        1: ("metadata", "ObjectMeta"),
        2: ("value", "i"),
        3: ("globalDefault", "?"),
        4: ("description", "s"),
        5: ("preemptionPolicy", "s!"),
    },
    "ResourceQuota": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "ResourceQuotaSpec"),
        3: ("status", "Empty"),
    },
    "ResourceQuotaSpec": {1: ("hard", "{}q"), 2: ("scopes", "*s"), 3: ("scopeSelector", "ScopeSelector")},
    "ScopeSelector": {1: ("matchExpressions", "*ScopedResourceSelectorRequirement")},
    "ScopedResourceSelectorRequirement": {1: ("scopeName", "s"), 2: ("operator", "s"), 3: ("values", "*s")},
    "Quantity": {1: ("string", "s")},
    # `kubectl auth whoami|can-i` (authentication/v1 and authorization/v1 generated.proto)
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta"), 2: ("status", "SelfSubjectReviewStatus")},
    "SelfSubjectReviewStatus": {1: ("userInfo", "UserInfo")},  # sent empty; the server fills it
    "UserInfo": {1: ("username", "s"), 2: ("uid", "s"), 3: ("groups", "*s")},
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectAccessReviewSpec"),
        3: ("status", "Empty"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: ("namespace", "s"),
        2: ("verb", "s"),
        3: ("group", "s"),
        4: ("version", "s"),
        5: ("resource", "s"),
        6: ("subresource", "s"),
        7: ("name", "s"),
    },
    "NonResourceAttributes": {1: ("path", "s"), 2: ("verb", "s")},
    # `kubectl autoscale` (autoscaling/v1 generated.proto)
    "HorizontalPodAutoscalerV1": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "HorizontalPodAutoscalerSpecV1"),
        3: ("status", "Empty"),
    },
    "HorizontalPodAutoscalerSpecV1": {
        1: ("scaleTargetRef", "CrossVersionObjectReference"),
        2: ("minReplicas", "i!"),
        3: ("maxReplicas", "i"),
        4: ("targetCPUUtilizationPercentage", "i!"),
    },
    "CrossVersionObjectReference": {1: ("kind", "s"), 2: ("name", "s"), 3: ("apiVersion", "s")},
    # client-go leader election (istiod's too) writes Leases through protobuf typed clients
    "Lease": {1: ("metadata", "ObjectMeta"), 2: ("spec", "LeaseSpec")},
    "LeaseSpec": {
        1: ("holderIdentity", "s!"),
        2: ("leaseDurationSeconds", "i!"),
        3: ("acquireTime", "mt"),
        4: ("renewTime", "mt"),
        5: ("leaseTransitions", "i!"),
        6: ("strategy", "s!"),
        7: ("preferredHolder", "s!"),
    },
    "Empty": {},
    "Time": {1: ("seconds", "i"), 2: ("nanos", "i")},
    "IntOrString": {1: ("type", "i"), 2: ("intVal", "i"), 3: ("strVal", "s")},
    "MapEntry": {1: ("key", "s"), 2: ("value", "b")},
    # k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto (and v1beta1 for its list)
    "ListMeta": {
        1: ("selfLink", "s"),
        2: ("resourceVersion", "s"),
        3: ("continue", "s"),
        4: ("remainingItemCount", "i!"),
    },
    "PartialObjectMetadata": {1: ("metadata", "ObjectMeta")},
    "PartialObjectMetadataList": {1: ("metadata", "ListMeta"), 2: ("items", "*PartialObjectMetadata")},
    # v1beta1's list numbers its fields the other way round (ListMeta was added in 1.15)
    "PartialObjectMetadataListV1beta1": {1: ("items", "*PartialObjectMetadata"), 2: ("metadata", "ListMeta")},
    "WatchEvent": {1: ("type", "s"), 2: ("object", "RawExtension")},
    "RawExtension": {1: ("raw", "b")},
    "Status": {
        1: ("metadata", "ListMeta"),
        2: ("status", "s"),
        3: ("message", "s"),
        4: ("reason", "s"),
        5: ("details", "StatusDetails"),
        6: ("code", "i"),
    },
    "StatusDetails": {
        1: ("name", "s"),
        2: ("group", "s"),
        3: ("kind", "s"),
        4: ("causes", "*StatusCause"),
        5: ("retryAfterSeconds", "i"),
        6: ("uid", "s"),
    },
    "StatusCause": {1: ("reason", "s"), 2: ("message", "s"), 3: ("field", "s")},
}
_KINDS = {
    "Namespace",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "TokenRequest",
    "Service",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "Deployment",
    "DeleteOptions",
    "Eviction",
    "Job",
    "CronJob",
    "Ingress",
    "PodDisruptionBudget",
    "PriorityClass",
    "ResourceQuota",
    "Lease",
    "HorizontalPodAutoscalerV1",
    "SelfSubjectReview",
    "SelfSubjectAccessReview",
}


# Kinds whose wire message differs between versions: (apiVersion, kind) -> message name.
_VERSIONED: dict[tuple[str, str], str] = {
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "HorizontalPodAutoscalerV1",
}


def _varint(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise errors.ProtoError("truncated varint")
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return result, i


def _fields(b: bytes) -> list[tuple[int, int, Any]]:
    out: list[tuple[int, int, Any]] = []
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        v: Any
        if num == 0:
            raise errors.ProtoError("field number 0")
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise errors.ProtoError("truncated field")
            v, i = b[i : i + n], i + n
        elif wt == 1:
            if i + 8 > len(b):
                raise errors.ProtoError("truncated fixed64")
            v, i = struct.unpack("<q", b[i : i + 8])[0], i + 8
        elif wt == 5:
            if i + 4 > len(b):
                raise errors.ProtoError("truncated fixed32")
            v, i = struct.unpack("<i", b[i : i + 4])[0], i + 4
        else:
            raise errors.ProtoError(f"unsupported wire type {wt}")
        out.append((num, wt, v))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(v: Any) -> str:
    if not isinstance(v, bytes):
        raise errors.ProtoError("expected a length-delimited string")
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.ProtoError("invalid UTF-8 in a string field") from e


def _scalar(kind: str, wt: int, v: Any, path: str) -> Any:
    if kind == "s":
        return _text(v)
    if kind == "b":
        if not isinstance(v, bytes):
            raise errors.ProtoError(f"{path}: expected bytes")
        return base64.b64encode(v).decode()
    if kind == "i":
        if wt != 0:
            raise errors.ProtoError(f"{path}: expected a varint")
        return _signed(v)
    if kind == "?":
        if wt != 0:
            raise errors.ProtoError(f"{path}: expected a varint")
        return bool(v)
    if kind == "t":
        t = _message("Time", v, path)
        if not t:
            return None
        return rfc3339.format(int(t.get("seconds", 0)))
    if kind == "mt":  # metav1.MicroTime: RFC 3339 with microseconds
        t = _message("Time", v, path)
        if not t:
            return None
        micros = int(t.get("nanos", 0)) // 1000
        return rfc3339.format(int(t.get("seconds", 0))).removesuffix("Z") + f".{micros:06d}Z"
    if kind == "ios":
        ios = _message("IntOrString", v, path)
        return ios.get("strVal", "") if ios.get("type") == 1 else int(ios.get("intVal", 0))
    if kind.startswith("{}"):
        entry = _fields(v if isinstance(v, bytes) else b"")
        key = value = None
        for num, _wt, ev in entry:
            if num == 1:
                key = _text(ev)
            elif num == 2 and kind == "{}q":  # a resource.Quantity message: its string form
                value = str(_message("Quantity", ev, path).get("string", ""))
            elif num == 2:
                value = _text(ev) if kind == "{}s" else base64.b64encode(ev).decode()
        return (key or "", value if value is not None else "")
    if not isinstance(v, bytes):
        raise errors.ProtoError(f"{path}: expected an embedded message")
    return _message(kind, v, path)


def _zero(v: Any) -> bool:
    return v in ("", 0, False, None) or v == {} or v == []


def _message(name: str, raw: bytes, path: str) -> Obj:
    spec = _MSG.get(name)
    if spec is None:
        raise errors.ProtoError(f"{path}: message {name} is not supported")
    out: Obj = {}
    for num, wt, v in _fields(raw):
        field = spec.get(num)
        if field is None and name == "Empty" and v in (0, b""):
            continue  # zero-valued fields of a message we keep empty (e.g. status on create)
        if field is None:
            raise errors.ProtoError(f"{path or name}: field number {num} of {name} is not supported")
        json_name, kind = field
        keep_zero = kind.endswith("!")
        kind = kind.rstrip("!")
        repeated = kind.startswith("*")
        kind = kind.lstrip("*")
        sub = f"{path}.{json_name}" if path else json_name
        value = _scalar(kind, wt, v, sub)
        if kind.startswith("{}"):
            k, val = value
            out.setdefault(json_name, {})[k] = val
        elif not json_name:  # a Go struct embedded inline: its fields sit in this object
            out.update(value)
        elif repeated:
            out.setdefault(json_name, []).append(value)
        elif value is not None and (keep_zero or not _zero(value)):
            out[json_name] = value
    return out


def decode(body: bytes) -> Obj:
    """The JSON form of a protobuf-encoded object; 415 for kinds or fields outside the tables."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("protobuf body without the Kubernetes envelope prefix")
    try:
        envelope = _message("Unknown", body[len(MAGIC) :], "")
        type_meta = envelope.get("typeMeta") or {}
        kind = type_meta.get("kind", "")
        message = _VERSIONED.get((str(type_meta.get("apiVersion", "")), kind), kind)
        if message not in _KINDS:
            raise errors.ApiError(
                415,
                f"the dev cluster does not decode protobuf for kind {kind!r} "
                f"({type_meta.get('apiVersion', '')}); "
                "send it as JSON or YAML (for example with kubectl apply -f)",
            )
        raw = base64.b64decode(envelope.get("raw", ""))
        obj = _message(message, raw, "")
    except errors.ProtoError as e:
        raise errors.ApiError(
            415, f"the dev cluster cannot decode this protobuf body: {e}; send it as JSON or YAML"
        ) from e
    if type_meta.get("apiVersion"):
        obj["apiVersion"] = type_meta["apiVersion"]
    obj["kind"] = kind
    return obj


# encoding


def _key(num: int, wire_type: int) -> bytes:
    return _uvarint(num << 3 | wire_type)


def _uvarint(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative int64 values are sent as ten-byte two's complement varints
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _delimited(num: int, payload: bytes) -> bytes:
    return _key(num, 2) + _uvarint(len(payload)) + payload


def _encode_scalar(kind: str, num: int, value: Any, path: str) -> bytes:
    if kind == "s":
        return _delimited(num, str(value).encode())
    if kind == "b":
        raw = value if isinstance(value, bytes) else base64.b64decode(str(value))
        return _delimited(num, raw)
    if kind in ("i", "?"):
        if not isinstance(value, (int, bool)):
            raise errors.ProtoError(f"{path}: expected an integer, not {type(value).__name__}")
        return _key(num, 0) + _uvarint(int(value))
    if kind == "t":
        try:
            seconds = int(rfc3339.parse(str(value)))
        except ValueError as e:
            raise errors.ProtoError(f"{path}: {e}") from e
        return _delimited(num, _encode_message("Time", {"seconds": seconds}, path))
    if kind.startswith("{}"):
        if not isinstance(value, dict):
            raise errors.ProtoError(f"{path}: expected a map")
        out = b""
        for k, v in value.items():
            entry = _delimited(1, str(k).encode()) + _encode_scalar("s" if kind == "{}s" else "b", 2, v, path)
            out += _delimited(num, entry)
        return out
    if not isinstance(value, dict):
        raise errors.ProtoError(f"{path}: expected an object")
    if kind == "FieldsV1":  # JSON holds the field set itself; the wire holds its JSON bytes
        return _delimited(num, _delimited(1, json.dumps(value, separators=(",", ":")).encode()))
    return _delimited(num, _encode_message(kind, value, path))


def _encode_message(name: str, obj: Obj, path: str = "") -> bytes:
    spec = _MSG.get(name)
    if spec is None:
        raise errors.ProtoError(f"{path}: message {name} is not supported")
    by_name = {json_name: (num, kind) for num, (json_name, kind) in spec.items()}
    out = b""
    for json_name, value in obj.items():
        field = by_name.get(json_name)
        if field is None and json_name in ("apiVersion", "kind"):
            continue  # TypeMeta: the envelope carries it; list items on the wire have none
        if field is None:
            raise errors.ProtoError(
                f"{path or name}: field {json_name} of {name} has no protobuf encoding here"
            )
        num, kind = field
        keep_zero = kind.endswith("!")
        kind = kind.rstrip("!").lstrip("*") if kind.startswith("*") else kind.rstrip("!")
        if value is None or (not keep_zero and _zero(value)):
            continue
        sub = f"{path}.{json_name}" if path else json_name
        if spec[num][1].startswith("*"):
            if not isinstance(value, list):
                raise errors.ProtoError(f"{sub}: expected a list")
            for item in value:
                out += _encode_scalar(kind, num, item, sub)
        else:
            out += _encode_scalar(kind, num, value, sub)
    return out


def encode(api_version: str, kind: str, obj: Obj, message: str = "") -> bytes:
    """`obj` (JSON form) as Kubernetes sends it: `k8s\\0` + runtime.Unknown{typeMeta, raw}.
    `message` names the wire message when it differs from `kind`."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    raw = _encode_message(message or kind, body)
    type_meta = _encode_message("TypeMeta", {"apiVersion": api_version, "kind": kind})
    return MAGIC + _delimited(1, type_meta) + _delimited(2, raw)


def encode_watch_event(etype: str, embedded: bytes) -> bytes:
    """One frame of a protobuf watch: a 4-byte big-endian length, then a metav1.WatchEvent whose
    object is the embedded, enveloped object (k8s.io/apimachinery pkg/runtime/serializer/protobuf
    RawSerializer and the LengthDelimitedFramer)."""
    event = _delimited(1, etype.encode()) + _delimited(2, _delimited(1, embedded))
    return struct.pack(">I", len(event)) + event


def decode_message(message: str, raw: bytes) -> Obj:
    """The JSON form of one wire message (no envelope), for readers of what `encode` wrote."""
    return _message(message, raw, "")


def split_envelope(body: bytes) -> tuple[Obj, bytes]:
    """(typeMeta, raw) of an enveloped object."""
    if not body.startswith(MAGIC):
        raise errors.ProtoError("no Kubernetes envelope prefix")
    envelope = _message("Unknown", body[len(MAGIC) :], "")
    return envelope.get("typeMeta") or {}, base64.b64decode(envelope.get("raw", ""))
