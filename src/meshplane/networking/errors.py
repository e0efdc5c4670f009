"""Errors in Istio networking config (Gateway, VirtualService): the config objects' shared
ConfigError (model/crfields.py), which names the object and the field path."""

from __future__ import annotations

from meshplane.model.crfields import ConfigError

__all__ = ["ConfigError"]
