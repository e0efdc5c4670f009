"""The lab's host iptables: the guard that keeps lab traffic on the lab's bridges, and the
chains kube-proxy's DNAT lives in. Every chain and rule is recorded in the ledger first, and
every jump into a lab chain is narrowed to the lab's own devices or address ranges, so the host's
own traffic never enters one.

- `guard`: filter chain `mp-LABID-fwd`, jumped to from FORWARD for packets coming in on a lab
  bridge (`-i mp-LABID-+`): accepted when they go out of a lab bridge, dropped otherwise. With
  forwarding on for the lab's bridges only, this is what makes "nothing the lab sends leaves the
  machine" hold even for a packet a pod crafts to the gateway with an outside destination.
  Also filter chain `mp-LABID-rej`, jumped to from FORWARD and OUTPUT for the lab's Service and
  LoadBalancer ranges: what DNAT did not rewrite (a Service port without ready endpoints, an
  address no Service has) is refused at once (TCP reset, else ICMP port unreachable), as
  kube-proxy's REJECT for a Service without endpoints, instead of timing out.
- `service_chain`: nat chain `mp-LABID-CLUSTER` for one cluster's Service and LoadBalancer
  addresses, jumped to from PREROUTING (pods) and OUTPUT (the host's processes: the API server
  calling a webhook Service) for those ranges only. Its rules are replaced as a whole by the
  cluster's node runtime (`lab/node/servicenat.py`) with `iptables-restore --noflush`.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshplane.lab.network import command, names, ranges
from meshplane.lab.network import ledger as ledgers


async def _chain(ledger: ledgers.Ledger, table: str, name: str) -> None:
    await ledger.record(ledgers.Entry("chain", name, table))
    await command.run("iptables", "-w", "-t", table, "-N", name)


async def _rule(ledger: ledgers.Ledger, table: str, chain: str, rule: Sequence[str], *, first: bool) -> None:
    """Append (or, with `first`, insert at the top) `rule` to `chain`, recorded first."""
    await ledger.record(ledgers.Entry("rule", chain, table, tuple(rule)))
    await command.run("iptables", "-w", "-t", table, "-I" if first else "-A", chain, *rule)


def fwd_chain(lab_id: str) -> str:
    return names.chain(lab_id, "fwd")


def rej_chain(lab_id: str) -> str:
    return names.chain(lab_id, "rej")


def service_chain_name(lab_id: str, cluster: str) -> str:
    return names.chain(lab_id, cluster)


async def guard(ledger: ledgers.Ledger, lab_id: str, clusters: Sequence[ranges.ClusterRanges]) -> None:
    """The forwarding guard and the Service-range reject chain of the lab (see the module doc)."""
    lab_bridges = names.bridges(lab_id)
    fwd, rej = fwd_chain(lab_id), rej_chain(lab_id)
    await _chain(ledger, "filter", fwd)
    await _rule(ledger, "filter", fwd, ("-o", lab_bridges, "-j", "ACCEPT"), first=False)
    await _rule(ledger, "filter", fwd, ("-j", "DROP"), first=False)
    await _chain(ledger, "filter", rej)
    await _rule(
        ledger, "filter", rej, ("-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"), first=False
    )
    await _rule(ledger, "filter", rej, ("-j", "REJECT"), first=False)
    await _rule(ledger, "filter", "FORWARD", ("-i", lab_bridges, "-j", fwd), first=True)
    for c in clusters:
        for r in (c.services, c.load_balancers):
            for hook in ("FORWARD", "OUTPUT"):
                await _rule(ledger, "filter", hook, ("-d", str(r.net), "-j", rej), first=True)


async def service_chain(ledger: ledgers.Ledger, lab_id: str, cluster: ranges.ClusterRanges) -> str:
    """The (empty) nat chain of `cluster`'s Service and LoadBalancer addresses, with its jumps."""
    name = service_chain_name(lab_id, cluster.cluster)
    await _chain(ledger, "nat", name)
    for r in (cluster.services, cluster.load_balancers):
        for hook in ("PREROUTING", "OUTPUT"):
            await _rule(ledger, "nat", hook, ("-d", str(r.net), "-j", name), first=True)
    return name
