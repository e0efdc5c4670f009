"""Istio's traffic-capture rules (istio-iptables), as pure functions: flags → validated settings →
rules → the `iptables-restore` input, and the commands that undo them.

The rules and their order follow Istio's `tools/istio-iptables/pkg/capture/run.go`, and the
restore text its `builder/iptables_builder_impl.go` (tables in name order, `-N` for every
Istio chain before the rules); the unit tests compare against Istio's golden files. Only the
REDIRECT inbound mode and IPv4 are built: `-m TPROXY` and IPv6 ranges are refused, never
silently half-applied. Every value is validated here, before anything touches the kernel.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from meshplane.agent import errors

ISTIO_OUTPUT = "ISTIO_OUTPUT"
ISTIO_OUTPUT_DNS = "ISTIO_OUTPUT_DNS"
ISTIO_INBOUND = "ISTIO_INBOUND"
ISTIO_REDIRECT = "ISTIO_REDIRECT"
ISTIO_IN_REDIRECT = "ISTIO_IN_REDIRECT"
ISTIO_DROP = "ISTIO_DROP"

# Chains and targets iptables already has (Istio's BuiltInChainsAndTargetsMap): never `-N`/`-X`ed.
BUILTIN = frozenset({"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING", "ACCEPT", "RETURN", "DROP"})
TABLES = ("filter", "mangle", "nat", "raw")
DNS_LISTENER_PORT = "15053"
INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6/32"
_IFNAME = re.compile(r"^[^\s/:]{1,15}$")
_OWNER = re.compile(r"^(\d+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$")


class IptablesError(errors.AgentError, ValueError):
    """A capture flag has a value istio-iptables cannot use (names the flag), or iptables failed."""


@dataclasses.dataclass(frozen=True, slots=True)
class Flags:
    """The raw flag values, as istio-iptables takes them (strings, comma-separated lists)."""

    envoy_port: str = "15001"
    inbound_capture_port: str = "15006"
    inbound_tunnel_port: str = "15008"
    proxy_uid: str = "1337"
    proxy_gid: str = ""
    inbound_interception_mode: str = "REDIRECT"
    inbound_ports: str = ""
    local_exclude_ports: str = ""
    exclude_interfaces: str = ""
    service_cidr: str = ""
    service_exclude_cidr: str = ""
    outbound_ports: str = ""
    local_outbound_ports_exclude: str = ""
    kube_virt_interfaces: str = ""
    redirect_dns: bool = False
    capture_all_dns: bool = False
    drop_invalid: bool = False
    dns_servers: tuple[str, ...] = ()
    owner_groups_include: str = "*"
    owner_groups_exclude: str = ""
    host_ipv4_loopback_cidr: str = "127.0.0.1/32"


@dataclasses.dataclass(frozen=True, slots=True)
class Capture:
    """Validated settings; lists are split, ports and CIDRs checked."""

    envoy_port: str
    inbound_capture_port: str
    inbound_tunnel_port: str
    proxy_uids: tuple[str, ...]
    proxy_gids: tuple[str, ...]
    inbound_ports: tuple[str, ...] | None  # None: "*" (all), (): none
    local_exclude_ports: tuple[str, ...]
    exclude_interfaces: tuple[str, ...]
    include_all: bool
    include_cidrs: tuple[str, ...]
    exclude_cidrs: tuple[str, ...]
    outbound_ports: tuple[str, ...]
    outbound_ports_exclude: tuple[str, ...]
    kube_virt_interfaces: tuple[str, ...]
    redirect_dns: bool
    capture_all_dns: bool
    drop_invalid: bool
    dns_servers: tuple[str, ...]
    owner_groups_except: bool
    owner_groups: tuple[str, ...]
    loopback_cidr: str

    @property
    def include_has_loopback(self) -> bool:
        return any(ipaddress.ip_interface(c).ip.is_loopback for c in self.include_cidrs)


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    table: str
    chain: str
    params: tuple[str, ...]  # starts with -A CHAIN or -I CHAIN POS


def split(value: str) -> list[str]:
    """Istio's config.Split: comma-separated, empty items dropped."""
    return [item for item in value.split(",") if item] if value else []


def _ports(flag: str, value: str) -> tuple[str, ...]:
    out = []
    for item in split(value):
        item = item.strip()
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise IptablesError(f"{flag}: {item!r} in {value!r} is not a port (1-65535)")
        out.append(str(int(item)))
    return tuple(out)


def _port(flag: str, value: str) -> str:
    ports = _ports(flag, value)
    if len(ports) != 1:
        raise IptablesError(f"{flag}: {value!r} is not a port (1-65535)")
    return ports[0]


def _cidrs(flag: str, value: str) -> tuple[str, ...]:
    out = []
    for item in split(value):
        item = item.strip()
        if "/" not in item:
            raise IptablesError(f"{flag}: {item!r} is not a CIDR (ADDRESS/BITS)")
        try:
            iface = ipaddress.ip_interface(item)
        except ValueError as e:
            raise IptablesError(f"{flag}: {item!r} is not a CIDR: {e}") from e
        if iface.version != 4:
            raise IptablesError(f"{flag}: {item!r} is IPv6; only IPv4 capture (iptables) is implemented")
        out.append(iface.with_prefixlen)
    return tuple(out)


def _names(flag: str, value: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    out = []
    for item in split(value):
        if not pattern.match(item):
            raise IptablesError(f"{flag}: {item!r} is not {what}")
        out.append(item)
    return tuple(out)


def validate(flags: Flags) -> Capture:
    """Check every flag; raise IptablesError naming the first bad one."""
    mode = flags.inbound_interception_mode
    if mode == "TPROXY":
        raise IptablesError("-m/--istio-inbound-interception-mode: TPROXY is not implemented; use REDIRECT")
    if mode not in ("", "REDIRECT"):
        raise IptablesError(f"-m/--istio-inbound-interception-mode: {mode!r} is not REDIRECT or TPROXY")
    inbound: tuple[str, ...] | None
    inbound = None if flags.inbound_ports == "*" else _ports("-b/--istio-inbound-ports", flags.inbound_ports)
    include_all = flags.service_cidr == "*"
    if flags.service_exclude_cidr == "*":
        raise IptablesError(
            "-x/--istio-service-exclude-cidr: '*' is not allowed (it would exclude everything)"
        )
    loopback = _cidrs("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", flags.host_ipv4_loopback_cidr)
    if len(loopback) != 1 or not ipaddress.ip_interface(loopback[0]).ip.is_loopback:
        raise IptablesError(
            f"ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: {flags.host_ipv4_loopback_cidr!r} "
            "is not an IPv4 loopback CIDR"
        )
    if not 8 <= ipaddress.ip_interface(loopback[0]).network.prefixlen <= 32:
        raise IptablesError("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: the mask must be in [8, 32]")
    uids = _names("-u/--proxy-uid", flags.proxy_uid, _OWNER, "a user id or name")
    gids = _names("-g/--proxy-gid", flags.proxy_gid or flags.proxy_uid, _OWNER, "a group id or name")
    if flags.owner_groups_include == "*":
        groups_except, groups = True, split(flags.owner_groups_exclude)
    else:
        groups_except, groups = False, split(flags.owner_groups_include)
        if len(groups) > 64:
            raise IptablesError("ISTIO_OUTBOUND_OWNER_GROUPS: at most 64 groups can be redirected")
    for g in groups:
        if not _OWNER.match(g):
            raise IptablesError(f"ISTIO_OUTBOUND_OWNER_GROUPS: {g!r} is not a group id or name")
    servers = []
    for s in flags.dns_servers:
        try:
            addr = ipaddress.ip_address(s)
        except ValueError as e:
            raise IptablesError(f"DNS server {s!r} (from resolv.conf) is not an IP address") from e
        if addr.version == 4:
            servers.append(str(addr))
    capture_all = flags.capture_all_dns
    # Istio: REDIRECT_DNS without CAPTURE_ALL_DNS and without any DNS server captures no DNS.
    redirect_dns = flags.redirect_dns and (capture_all or bool(servers))
    return Capture(
        envoy_port=_port("-p/--envoy-port", flags.envoy_port),
        inbound_capture_port=_port("-z/--inbound-capture-port", flags.inbound_capture_port),
        inbound_tunnel_port=_port("-e/--inbound-tunnel-port", flags.inbound_tunnel_port),
        proxy_uids=uids,
        proxy_gids=gids,
        inbound_ports=inbound,
        local_exclude_ports=_ports("-d/--istio-local-exclude-ports", flags.local_exclude_ports),
        exclude_interfaces=_names(
            "-c/--istio-exclude-interfaces", flags.exclude_interfaces, _IFNAME, "an interface"
        ),
        include_all=include_all,
        include_cidrs=() if include_all else _cidrs("-i/--istio-service-cidr", flags.service_cidr),
        exclude_cidrs=_cidrs("-x/--istio-service-exclude-cidr", flags.service_exclude_cidr),
        outbound_ports=_ports("-q/--istio-outbound-ports", flags.outbound_ports),
        outbound_ports_exclude=_ports(
            "-o/--istio-local-outbound-ports-exclude", flags.local_outbound_ports_exclude
        ),
        kube_virt_interfaces=_names(
            "-k/--kube-virt-interfaces", flags.kube_virt_interfaces, _IFNAME, "an interface"
        ),
        redirect_dns=redirect_dns,
        capture_all_dns=capture_all,
        drop_invalid=flags.drop_invalid,
        dns_servers=tuple(servers),
        owner_groups_except=groups_except,
        owner_groups=tuple(groups),
        loopback_cidr=loopback[0],
    )


class _Builder:
    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def append(self, chain: str, table: str, *params: str) -> None:
        self.rules.append(Rule(table, chain, ("-A", chain, *params)))

    def insert(self, chain: str, table: str, position: int, *params: str) -> None:
        self.rules.append(Rule(table, chain, ("-I", chain, str(position), *params)))


def build(c: Capture) -> list[Rule]:
    """Istio's rules for these settings, in Istio's order (REDIRECT mode, IPv4)."""
    b = _Builder()
    for nic in c.exclude_interfaces:
        b.append("PREROUTING", "nat", "-i", nic, "-j", "RETURN")
        b.append("OUTPUT", "nat", "-o", nic, "-j", "RETURN")
    for nic in c.kube_virt_interfaces:
        b.insert("PREROUTING", "nat", 1, "-i", nic, "-j", "RETURN")
    if c.drop_invalid:
        b.append("PREROUTING", "mangle", "-m", "conntrack", "--ctstate", "INVALID", "-j", ISTIO_DROP)
        b.append(ISTIO_DROP, "mangle", "-j", "DROP")
    b.append(ISTIO_INBOUND, "nat", "-p", "tcp", "--dport", c.inbound_tunnel_port, "-j", "RETURN")
    b.append(ISTIO_REDIRECT, "nat", "-p", "tcp", "-j", "REDIRECT", "--to-ports", c.envoy_port)
    b.append(ISTIO_IN_REDIRECT, "nat", "-p", "tcp", "-j", "REDIRECT", "--to-ports", c.inbound_capture_port)
    _inbound(b, c)
    b.append("OUTPUT", "nat", "-j", ISTIO_OUTPUT)
    for port in c.outbound_ports_exclude:
        b.append(ISTIO_OUTPUT, "nat", "-p", "tcp", "--dport", port, "-j", "RETURN")
        b.append(ISTIO_OUTPUT, "nat", "-p", "udp", "--dport", port, "-j", "RETURN")
    b.append(ISTIO_OUTPUT, "nat", "-o", "lo", "-s", INBOUND_PASSTHROUGH_SOURCE, "-j", "RETURN")
    _owners(b, c)
    if c.owner_groups_except:
        for group in c.owner_groups:
            b.append(ISTIO_OUTPUT, "nat", "-m", "owner", "--gid-owner", group, "-j", "RETURN")
    else:
        matchers = [p for g in c.owner_groups for p in ("-m", "owner", "!", "--gid-owner", g)]
        b.append(ISTIO_OUTPUT, "nat", *matchers, "-j", "RETURN")
    if c.redirect_dns:
        _dns(b, c)
    b.append(ISTIO_OUTPUT, "nat", "-d", c.loopback_cidr, "-j", "RETURN")
    for cidr in c.exclude_cidrs:
        b.append(ISTIO_OUTPUT, "nat", "-d", cidr, "-j", "RETURN")
    for port in c.outbound_ports:
        b.append(ISTIO_OUTPUT, "nat", "-p", "tcp", "--dport", port, "-j", ISTIO_REDIRECT)
    if c.include_all:
        b.append(ISTIO_OUTPUT, "nat", "-j", ISTIO_REDIRECT)
        for nic in c.kube_virt_interfaces:
            b.insert("PREROUTING", "nat", 1, "-i", nic, "-j", ISTIO_REDIRECT)
    else:
        for cidr in c.include_cidrs:
            for nic in c.kube_virt_interfaces:
                b.insert("PREROUTING", "nat", 1, "-i", nic, "-d", cidr, "-j", ISTIO_REDIRECT)
            b.append(ISTIO_OUTPUT, "nat", "-d", cidr, "-j", ISTIO_REDIRECT)
    return b.rules


def _inbound(b: _Builder, c: Capture) -> None:
    if c.inbound_ports == ():
        return
    b.append("PREROUTING", "nat", "-p", "tcp", "-j", ISTIO_INBOUND)
    if c.inbound_ports is None:
        for port in c.local_exclude_ports:
            b.append(ISTIO_INBOUND, "nat", "-p", "tcp", "--dport", port, "-j", "RETURN")
        b.append(ISTIO_INBOUND, "nat", "-p", "tcp", "-j", ISTIO_IN_REDIRECT)
    else:
        for port in c.inbound_ports:
            b.append(ISTIO_INBOUND, "nat", "-p", "tcp", "--dport", port, "-j", ISTIO_IN_REDIRECT)


def _owners(b: _Builder, c: Capture) -> None:
    """The proxy's own uids, then gids: its traffic to itself over lo is redirected inbound, the
    rest of its traffic is never captured. Only the uid rules spare DNS (Istio's run.go)."""
    tunnel = c.inbound_tunnel_port
    for uid in c.proxy_uids:
        dport: tuple[str, ...] = ("!", "--dport", tunnel)
        if c.redirect_dns:
            dport = ("-m", "multiport", "!", "--dports", f"53,{tunnel}")
        _owner(b, c, "--uid-owner", uid, dport)
    for gid in c.proxy_gids:
        _owner(b, c, "--gid-owner", gid, ("!", "--dport", tunnel))


def _owner(b: _Builder, c: Capture, match: str, owner: str, dport: tuple[str, ...]) -> None:
    b.append(ISTIO_OUTPUT, "nat", "-o", "lo", "!", "-d", c.loopback_cidr, "-p", "tcp", *dport,
             "-m", "owner", match, owner, "-j", ISTIO_IN_REDIRECT)  # fmt: skip
    if not c.include_has_loopback:
        not_dns = ("-p", "tcp", "!", "--dport", "53") if c.redirect_dns else ()
        b.append(ISTIO_OUTPUT, "nat", "-o", "lo", *not_dns, "-m", "owner", "!", match, owner,
                 "-j", "RETURN")  # fmt: skip
    b.append(ISTIO_OUTPUT, "nat", "-m", "owner", match, owner, "-j", "RETURN")


def _dns(b: _Builder, c: Capture) -> None:
    """Istio's SetupDNSRedir and addDNSConntrackZones, IPv4 part."""
    b.append("OUTPUT", "raw", "-j", ISTIO_OUTPUT_DNS)
    b.append(ISTIO_OUTPUT, "nat", "-j", ISTIO_OUTPUT_DNS)
    to = ("-j", "REDIRECT", "--to-ports", DNS_LISTENER_PORT)
    if c.capture_all_dns:
        b.append(ISTIO_OUTPUT_DNS, "nat", "-p", "tcp", "--dport", "53", *to)
        b.append(
            ISTIO_OUTPUT_DNS,
            "nat",
            "-p",
            "udp",
            "--dport",
            "53",
            "-j",
            "REDIRECT",
            "--to-port",
            DNS_LISTENER_PORT,
        )
    else:
        for s in c.dns_servers:
            b.append(ISTIO_OUTPUT_DNS, "nat", "-p", "tcp", "--dport", "53", "-d", f"{s}/32", *to)
        for s in c.dns_servers:
            b.append(ISTIO_OUTPUT_DNS, "nat", "-p", "udp", "--dport", "53", "-d", f"{s}/32",
                     "-j", "REDIRECT", "--to-port", DNS_LISTENER_PORT)  # fmt: skip
    for kind, ids in (("--uid-owner", c.proxy_uids), ("--gid-owner", c.proxy_gids)):
        for i in ids:
            b.append(
                ISTIO_OUTPUT_DNS,
                "raw",
                "-p",
                "udp",
                "--dport",
                "53",
                "-m",
                "owner",
                kind,
                i,
                "-j",
                "CT",
                "--zone",
                "1",
            )
            b.append(ISTIO_OUTPUT_DNS, "raw", "-p", "udp", "--sport", DNS_LISTENER_PORT,
                     "-m", "owner", kind, i, "-j", "CT", "--zone", "2")  # fmt: skip
    if c.capture_all_dns:
        b.append("PREROUTING", "raw", "-j", ISTIO_INBOUND)
        b.append(ISTIO_OUTPUT_DNS, "raw", "-p", "udp", "--dport", "53", "-j", "CT", "--zone", "2")
        b.append(ISTIO_INBOUND, "raw", "-p", "udp", "--sport", "53", "-j", "CT", "--zone", "1")
    else:
        if c.dns_servers:
            b.append("PREROUTING", "raw", "-j", ISTIO_INBOUND)
        for s in c.dns_servers:
            b.append(
                ISTIO_OUTPUT_DNS,
                "raw",
                "-p",
                "udp",
                "--dport",
                "53",
                "-d",
                f"{s}/32",
                "-j",
                "CT",
                "--zone",
                "2",
            )
            b.append(
                ISTIO_INBOUND, "raw", "-p", "udp", "--sport", "53", "-s", f"{s}/32", "-j", "CT", "--zone", "1"
            )


def restore_input(rules: list[Rule]) -> str:
    """The `iptables-restore --noflush` input, byte for byte as Istio's BuildV4Restore."""
    per_table: dict[str, list[str]] = {"filter": [], "nat": [], "mangle": []}
    seen: set[tuple[str, str]] = set()
    for r in rules:
        per_table.setdefault(r.table, [])
        if (r.chain, r.table) not in seen:
            seen.add((r.chain, r.table))
            if r.chain not in BUILTIN:
                per_table[r.table].append(f"-N {r.chain}")
    for r in rules:  # chains only jumped to get created too
        if len(r.params) >= 2 and r.params[-2] == "-j":
            target = r.params[-1]
            if (target, r.table) not in seen:
                seen.add((target, r.table))
                if target not in BUILTIN:
                    per_table[r.table].append(f"-N {target}")
    for r in rules:
        per_table[r.table].append(" ".join(r.params))
    out = []
    for table in sorted(per_table):
        if per_table[table]:
            out.append(f"* {table}")
            out.extend(per_table[table])
            out.append("COMMIT")
    return "".join(line + "\n" for line in out)


def undo(rules: list[Rule]) -> list[list[str]]:
    """`iptables` argument lists deleting the rules these settings put in built-in chains (newest
    first), as Istio's UndoRules: rules inside ISTIO_* chains go with their chain's flush."""
    out = []
    for r in reversed(rules):
        if r.chain.startswith("ISTIO_"):
            continue
        rest = r.params[3:] if r.params[0] == "-I" else r.params[2:]
        out.append(["-t", r.table, "-D", r.chain, *rest])
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class SavedTable:
    """One table of `iptables-save` output, reduced to what clean-up needs."""

    name: str
    istio_chains: tuple[str, ...]
    jumps: tuple[str, ...]  # rules ("CHAIN ARGS…" as saved) in other chains that jump to ISTIO_*


def parse_save(text: str) -> list[SavedTable]:
    """The ISTIO_* chains and the jumps into them, per table, from `iptables-save` output."""
    tables: list[SavedTable] = []
    name = ""
    chains: list[str] = []
    jumps: list[str] = []
    for line in text.splitlines():
        if line.startswith("*"):
            name, chains, jumps = line[1:].strip(), [], []
        elif line.startswith(":ISTIO_"):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A ") and not line.split()[1].startswith("ISTIO_"):
            words = line.split()
            if any(
                words[i] in ("-j", "-g") and words[i + 1].startswith("ISTIO_") for i in range(len(words) - 1)
            ):
                jumps.append(line[3:])
        elif line == "COMMIT" and name:
            tables.append(SavedTable(name, tuple(chains), tuple(jumps)))
            name = ""
    return tables


def cleanup_from_save(tables: list[SavedTable]) -> str:
    """An `iptables-restore --noflush` input removing every jump into an ISTIO_* chain and then
    every ISTIO_* chain; built from the current state, so each delete matches an existing rule."""
    out = []
    for t in tables:
        if not t.istio_chains and not t.jumps:
            continue
        out.append(f"*{t.name}")
        out.extend(f"-D {j}" for j in t.jumps)
        out.extend(f"-F {c}" for c in t.istio_chains)
        out.extend(f"-X {c}" for c in t.istio_chains)
        out.append("COMMIT")
    return "".join(line + "\n" for line in out)
