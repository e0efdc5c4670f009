"""Kubeconfig documents as dicts: build one for a single cluster, merge several as kubectl does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SECTIONS = ("clusters", "users", "contexts")


def build(name: str, server: str, ca_data: str, token: str) -> dict[str, Any]:
    """A kubeconfig whose cluster, user and context are all named `name` (the current context).

    `ca_data` is the base64 CA bundle (`certificate-authority-data`); the user authenticates with
    a bearer `token`.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def merge(docs: Iterable[Mapping[str, Any]], current: str | None = None) -> dict[str, Any]:
    """Merge kubeconfig documents as kubectl merges a KUBECONFIG list.

    The first cluster, user or context of a name wins; the current context is `current` if given,
    else that of the first document that sets one (absent if none does).
    """
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    merged.update({section: [] for section in SECTIONS})
    seen: dict[str, set[str]] = {section: set() for section in SECTIONS}
    first_current: str | None = None
    for doc in docs:
        if first_current is None and doc.get("current-context"):
            first_current = str(doc["current-context"])
        for section in SECTIONS:
            for item in doc.get(section) or []:
                if isinstance(item, dict) and str(item.get("name")) not in seen[section]:
                    seen[section].add(str(item.get("name")))
                    merged[section].append(item)
    if current or first_current:
        merged["current-context"] = current or first_current
    return merged
