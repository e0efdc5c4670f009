"""Bring the lab's network up and down as a whole (what `lab up` and `lab down` call).

`up`: the ranges are checked against the host's routes (all of them, before anything is made),
then per cluster its bridge (`links.make_bridge`: gateway address, routes, forwarding on that
bridge only, `ip route get` check), then the firewall guard and one Service nat chain per cluster
(`firewall`). Every object is in the lab's ledger before it exists. `down`: the node runtimes'
ledgers (their pods' namespaces, veths and resolver files) and then the lab's own are cleaned up,
each by the names it recorded, newest first; it works after a crash, from a fresh process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from meshplane.lab import errors
from meshplane.lab.network import firewall, links, ranges
from meshplane.lab.network import ledger as ledgers
from meshplane.lab.network import plan as plans

log = logging.getLogger(__name__)


async def up(ledger: ledgers.Ledger, plan: plans.NetworkPlan) -> None:
    await ranges.check_host(plan.every_range())
    for c in plan.clusters:
        await links.make_bridge(ledger, c.bridge, [c.ranges])
    await firewall.guard(ledger, plan.lab_id, [c.ranges for c in plan.clusters])
    for c in plan.clusters:
        await firewall.service_chain(ledger, plan.lab_id, c.ranges)
    log.info("lab network up lab=%s bridges=%s", plan.lab_id, ",".join(c.bridge for c in plan.clusters))


async def down(ledger_files: Sequence[Path]) -> list[str]:
    """Clean up each ledger in order; what was removed, as text. A LedgerError lists what is left
    (after every ledger was tried)."""
    removed: list[str] = []
    failures: list[str] = []
    for path in ledger_files:
        try:
            removed += [str(e) for e in await ledgers.cleanup(path)]
        except errors.LedgerError as e:
            failures.append(str(e))
    if failures:
        raise errors.LedgerError("; ".join(failures))
    return removed
