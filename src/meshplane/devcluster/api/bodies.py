"""Request bodies: size limit, media types, JSON/YAML decoding with duplicate-field detection."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from meshplane.devcluster import errors
from meshplane.devcluster.api import protobuf
from meshplane.runtime.jsonobj import Obj

MAX_BODY = 3 * 1024 * 1024  # Kubernetes' limit for a request body

JSON = "application/json"
YAML = "application/yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH)
_OBJECT_TYPES = (JSON, YAML, "application/x-yaml", "text/yaml", protobuf.MEDIA_TYPE)

_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class Decoded:
    value: Any
    media_type: str
    duplicates: list[str] = field(default_factory=list)  # dotted paths of duplicate JSON fields


def media_type(request: web.BaseRequest) -> str:
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower()


async def read_limited(request: web.BaseRequest) -> bytes:
    """The whole body, or 413 once it exceeds 3 MiB (checked before and while reading)."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise errors.ApiError(413, f"Request entity too large: limit is {MAX_BODY}")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.ApiError(413, f"Request entity too large: limit is {MAX_BODY}")
        chunks.append(chunk)
    return b"".join(chunks)


def _pairs_hook(dups: list[str]) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> Obj:
        out: Obj = {}
        for k, v in pairs:
            if k in out:
                dups.append(k)
            out[k] = v
        return out

    return hook


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(raw: bytes) -> tuple[Any, list[str]]:
    dups: list[str] = []
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_pairs_hook(dups), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise errors.bad_request(f"the body of the request could not be decoded as JSON: {e}") from e
    check_depth(value)
    return value, dups


def decode_yaml(raw: bytes) -> Any:
    try:
        docs = list(yaml.load_all(raw.decode("utf-8"), Loader=_YamlLoader))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError, ValueError) as e:
        raise errors.bad_request(f"the body of the request could not be decoded as YAML: {e}") from e
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        raise errors.bad_request(f"the body must hold exactly one YAML document, found {len(docs)}")
    return _plain(docs[0])


MAX_DEPTH = 100  # deeper documents are refused (the API server bounds nesting too)
MAX_NODES = 1_000_000  # YAML aliases can expand a small body enormously


def _plain(value: Any) -> Any:
    """YAML may produce dates, sets, non-string keys and shared (aliased) nodes; the API speaks
    plain JSON, so convert, bounding the expansion."""
    budget = [MAX_NODES]

    def conv(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise errors.bad_request("the YAML document expands to too many nodes")
        if depth > MAX_DEPTH:
            raise errors.bad_request(f"the body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(v, dict):
            return {str(k): conv(x, depth + 1) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x, depth + 1) for x in v]
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        return str(v)

    return conv(value, 0)


def check_depth(value: Any) -> None:
    """400 for JSON nested deeper than MAX_DEPTH (checked without recursion)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise errors.bad_request(f"the body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


async def read_object(request: web.BaseRequest) -> Decoded:
    """A create/update body: a JSON or YAML object."""
    mt = media_type(request) or JSON
    if mt not in _OBJECT_TYPES:
        raise errors.ApiError(
            415,
            f'the body of the request was in an unknown format ("{mt}") - accepted media types include: '
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    raw = await read_limited(request)
    if not raw.strip():
        raise errors.bad_request("the body of the request is empty")
    value, dups = await _off_loop_if_large(_decode_object, mt, raw)
    if not isinstance(value, dict):
        raise errors.bad_request(f"the body of the request must be an object, not {type(value).__name__}")
    return Decoded(value, mt, dups)


def _decode_object(mt: str, raw: bytes) -> tuple[Any, list[str]]:
    if mt == protobuf.MEDIA_TYPE:
        return protobuf.decode(raw), []
    if mt == JSON:
        return decode_json(raw)
    return decode_yaml(raw), []


def _decode_patch(mt: str, raw: bytes) -> tuple[Any, list[str]]:
    if mt == APPLY_PATCH:
        return decode_yaml(raw), []
    return decode_json(raw)


LARGE = 256 * 1024  # bodies above this are decoded on a worker thread


async def _off_loop_if_large(fn: Any, mt: str, raw: bytes) -> tuple[Any, list[str]]:
    """Decoding megabytes of YAML takes a while: keep the event loop free for everyone else."""
    if len(raw) > LARGE:
        result: tuple[Any, list[str]] = await asyncio.to_thread(fn, mt, raw)
        return result
    out: tuple[Any, list[str]] = fn(mt, raw)
    return out


async def read_patch(request: web.BaseRequest) -> Decoded:
    mt = media_type(request)
    if mt not in PATCH_TYPES:
        raise errors.ApiError(
            415,
            f'the body of the request was in an unknown format ("{mt}") - accepted media types include: '
            + ", ".join(PATCH_TYPES),
        )
    raw = await read_limited(request)
    if not raw.strip():
        raise errors.bad_request("the body of the patch request is empty")
    value, dups = await _off_loop_if_large(_decode_patch, mt, raw)
    if mt == JSON_PATCH and not isinstance(value, list):
        raise errors.bad_request("a JSON patch must be a list of operations")
    if mt != JSON_PATCH and not isinstance(value, dict):
        raise errors.bad_request(f"a {mt} patch must be an object")
    return Decoded(value, mt, dups)


async def read_optional_object(request: web.BaseRequest) -> Obj | None:
    """DeleteOptions and the like: an optional JSON/YAML object body."""
    if not request.can_read_body:
        return None
    raw = await read_limited(request)
    if not raw.strip():
        return None
    mt = media_type(request) or JSON
    if mt == protobuf.MEDIA_TYPE:
        value: Any = protobuf.decode(raw)
    elif mt in _OBJECT_TYPES[1:]:
        value = decode_yaml(raw)
    else:
        value = decode_json(raw)[0]
    if not isinstance(value, dict):
        raise errors.bad_request("the body of the request must be an object")
    return value


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
