"""The IstioOperator files of the two-cluster install (one copy: tests/support/installenv.py)."""

from __future__ import annotations

from tests.support.installenv import CLUSTER1_YAML as CLUSTER1
from tests.support.installenv import CLUSTER2_YAML as CLUSTER2

__all__ = ["CLUSTER1", "CLUSTER2"]
