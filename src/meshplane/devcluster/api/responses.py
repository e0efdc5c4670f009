"""Response helpers: JSON bodies with the exact Content-Type clients compare against, and
objects shown in the version the request asked for."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from meshplane.devcluster.api import bodies
from meshplane.devcluster.schema import conversion, resources
from meshplane.runtime.jsonobj import Obj

JSON_HEADERS = {"Content-Type": "application/json"}


def respond(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = dict(JSON_HEADERS)
    resp = web.Response(body=bodies.dumps(obj), status=status, headers=headers)
    add_warnings(resp, warnings)
    return resp


def add_warnings(resp: web.Response, warnings: list[str] | None) -> None:
    for w in warnings or []:
        # json.dumps quotes and escapes (control characters too), as a header value must be
        resp.headers.add("Warning", "299 - " + json.dumps(w))


def present(rt: resources.ResourceType, obj: Obj) -> Obj:
    """The object as the requested version shows it (CRD versions share storage and differ only in
    apiVersion; built-in versions with different schemas convert, schema/conversion)."""
    if conversion.converts(rt.key, rt.api_version):
        return conversion.to_served(rt.key, rt.api_version, obj)
    if obj.get("apiVersion") != rt.api_version:
        obj = dict(obj, apiVersion=rt.api_version)
    return obj
