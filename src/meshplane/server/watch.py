"""Per-type subscription state of one stream and the xDS request rules (ACK, NACK, stale nonce).

Pure functions over `TypeState`, following Envoy's xDS protocol and Istio's server
(pkg/xds/server.go `ShouldRespond`, pilot/pkg/xds/delta.go `shouldRespondDelta`):
- a request carrying `error_detail` is a NACK: recorded, never answered with the same data;
- a request whose `response_nonce` is not the last nonce sent on this type is stale: ignored
  (State of the World); in Delta its subscription changes still apply, because they are deltas
  that the client will not repeat;
- otherwise it ACKs the last response; it needs an answer only when it subscribes new names
  (or, for wildcard types, changes the set), or when a warming dependency forces one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from envoy.service.discovery.v3 import discovery_pb2

from meshplane.xds import resources

WILDCARD = "*"


class Kind(StrEnum):
    INIT = "init"  # first request for the type on this stream
    ACK = "ack"
    NACK = "nack"
    STALE = "stale"  # response_nonce is not the last one sent
    CHANGE = "change"  # subscription change that needs an answer
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Nack:
    nonce: str
    version: str  # the version the proxy rejected (the one sent with that nonce), "" if unknown
    message: str
    code: int
    at: float  # wall clock


@dataclass(slots=True)
class TypeState:
    type_url: str
    wildcard: bool = False
    names: frozenset[str] = frozenset()  # explicitly subscribed names (interned, see `intern`)
    # Delta: name -> version the proxy has (as far as we know); SotW keeps only a count
    known: dict[str, str] = field(default_factory=dict)
    count: int = 0  # SotW: resources in the proxy's current set (syncz)
    absent: set[str] = field(default_factory=set)  # Delta: subscribed names we told are absent
    nonce_sent: str = ""
    version_sent: str = ""
    sent_at: float = 0.0
    nonce_acked: str = ""
    version_acked: str = ""
    acked_at: float = 0.0
    last_nack: Nack | None = None
    always_respond: bool = False  # answer the next ACK-looking request (cluster warming)
    names_key: int = 0  # SotW: fingerprint of the request that set `names` (see `names_key`)

    @property
    def scope(self) -> frozenset[str] | None:
        """Names to generate: None for a wildcard subscription (everything of the type)."""
        return None if self.wildcard else self.names


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    respond: bool
    added: frozenset[str] = frozenset()  # names newly subscribed by this request


_interned: weakref.WeakValueDictionary[int, frozenset[str]] = weakref.WeakValueDictionary()
_intern_lock = threading.Lock()


def intern(names: frozenset[str]) -> frozenset[str]:
    """One shared object per distinct subscription: a thousand proxies subscribed to the same
    thousand clusters hold one set, not a thousand (memory, and garbage-collector time)."""
    if not names:
        return frozenset()
    key = hash(names)
    with _intern_lock:
        cached = _interned.get(key)
        if cached is not None and cached == names:
            return cached
        _interned[key] = names
    return names


def _nack(req: discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest) -> bool:
    return bool(req.HasField("error_detail"))


def _record_nack(
    st: TypeState, req: discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest, now: float
) -> None:
    version = st.version_sent if req.response_nonce == st.nonce_sent else ""
    st.last_nack = Nack(
        nonce=req.response_nonce,
        version=version,
        message=req.error_detail.message,
        code=req.error_detail.code,
        at=now,
    )


def names_key(req: discovery_pb2.DiscoveryRequest) -> int:
    """A fingerprint of everything in a SotW request but its version and nonce, computed in C.

    Envoy repeats its whole subscription in every ACK (a thousand cluster names for EDS); turning
    them into Python strings on each ACK costs more than the rest of the request handling, and
    nearly every ACK repeats the previous subscription unchanged.
    """
    version, nonce = req.version_info, req.response_nonce
    req.ClearField("version_info")
    req.ClearField("response_nonce")
    try:
        return hash(req.SerializeToString(deterministic=True))
    finally:
        req.version_info, req.response_nonce = version, nonce


def sotw_request(states: dict[str, TypeState], req: discovery_pb2.DiscoveryRequest, now: float) -> Decision:
    """Apply a State-of-the-World request to `states` and say whether it needs a response."""
    type_url = req.type_url
    wildcard_type = type_url in resources.WILDCARD_TYPES
    st = states.get(type_url)
    if _nack(req):
        if st is not None:
            _record_nack(st, req, now)
        return Decision(Kind.NACK, respond=False)
    key = names_key(req)
    if st is None or not req.response_nonce:
        names = frozenset(req.resource_names)
        if not wildcard_type and not names - {WILDCARD}:
            states.pop(type_url, None)
            return Decision(Kind.UNSUBSCRIBE, respond=False)
        fresh = TypeState(type_url=type_url, names_key=key)
        fresh.wildcard = wildcard_type and (not names or WILDCARD in names)
        fresh.names = intern(names - {WILDCARD})
        if st is not None:  # same stream subscribing again: keep the ack history for syncz
            fresh.nonce_sent, fresh.version_sent = st.nonce_sent, st.version_sent
            fresh.nonce_acked, fresh.version_acked, fresh.last_nack = (
                st.nonce_acked,
                st.version_acked,
                st.last_nack,
            )
        states[type_url] = fresh
        if type_url == resources.TYPE_CDS and resources.TYPE_EDS in states:
            # Clusters (re)sent now will warm and wait for their endpoints, even if the next
            # EDS request looks like an ACK (envoyproxy/envoy#13009).
            states[resources.TYPE_EDS].always_respond = True
        return Decision(Kind.INIT, respond=True, added=fresh.names)
    if req.response_nonce != st.nonce_sent:
        return Decision(Kind.STALE, respond=False)
    st.nonce_acked, st.version_acked, st.acked_at = req.response_nonce, st.version_sent, now
    old_names, old_wild = st.names, st.wildcard
    if key != st.names_key:  # the subscription changed (rare): read the names
        st.names_key = key
        names = frozenset(req.resource_names)
        if wildcard_type:
            if WILDCARD in names:
                st.wildcard = True
            elif names:
                st.wildcard = False
            if st.names != names - {WILDCARD}:
                st.names = intern(names - {WILDCARD})
            if not st.wildcard and not st.names:
                states.pop(type_url, None)
                return Decision(Kind.UNSUBSCRIBE, respond=False)
        else:
            names -= {WILDCARD}  # no wildcard for EDS/RDS; a stray "*" is not a resource name
            if not names:
                states.pop(type_url, None)
                return Decision(Kind.UNSUBSCRIBE, respond=False)
            if st.names != names:
                st.names = intern(names)
    added = st.names - old_names
    if st.always_respond:
        st.always_respond = False
        return Decision(Kind.CHANGE, respond=True, added=added)
    if added or (wildcard_type and (st.names != old_names or st.wildcard != old_wild)):
        return Decision(Kind.CHANGE, respond=True, added=added)
    return Decision(Kind.ACK, respond=False)


def delta_request(
    states: dict[str, TypeState], req: discovery_pb2.DeltaDiscoveryRequest, now: float
) -> Decision:
    """Apply a Delta request (subscribe/unsubscribe, ACK/NACK) and say whether it needs a response."""
    type_url = req.type_url
    wildcard_type = type_url in resources.WILDCARD_TYPES
    subs = set(req.resource_names_subscribe)
    unsubs = set(req.resource_names_unsubscribe)
    st = states.get(type_url)
    if st is None:
        st = TypeState(type_url=type_url)
        # "a client that has never explicitly subscribed to names is treated as subscribed to *"
        st.wildcard = WILDCARD in subs or (wildcard_type and not subs)
        st.known = dict(req.initial_resource_versions)
        st.names = intern(frozenset((subs | set(st.known)) - {WILDCARD} - unsubs))
        if WILDCARD in unsubs:
            st.wildcard = False
        states[type_url] = st
        if _nack(req):
            _record_nack(st, req, now)
        return Decision(Kind.INIT, respond=True, added=st.names)
    old_names, old_wild = st.names, st.wildcard
    if subs or unsubs:
        st.names = intern((st.names | (subs - {WILDCARD})) - unsubs)
    if WILDCARD in subs:
        st.wildcard = True
    if WILDCARD in unsubs:
        st.wildcard = False
    for name in unsubs:
        st.known.pop(name, None)
        st.absent.discard(name)
    added = st.names - old_names
    changed = bool(added) or (st.wildcard and not old_wild)
    if _nack(req):
        _record_nack(st, req, now)
        return Decision(Kind.NACK, respond=changed, added=added)
    if req.response_nonce:
        if req.response_nonce != st.nonce_sent:
            return Decision(Kind.STALE, respond=changed, added=added)
        st.nonce_acked, st.version_acked, st.acked_at = req.response_nonce, st.version_sent, now
        if st.always_respond:
            st.always_respond = False
            return Decision(Kind.CHANGE, respond=True, added=added)
        return Decision(Kind.CHANGE if changed else Kind.ACK, respond=changed, added=added)
    return Decision(Kind.CHANGE if changed else Kind.ACK, respond=changed, added=added)


def delta_diff(
    items: Sequence[resources.Resource],
    st: TypeState,
    considered: frozenset[str] | None,
    forced: frozenset[str] = frozenset(),
) -> tuple[list[resources.Resource], list[str]]:
    """What a Delta response must carry: changed resources and removals.

    `items` are the generated resources in scope; `considered` is the set of names this response
    speaks for (None: the whole subscription). A name the proxy has that is no longer generated is
    removed; a subscribed name that does not exist is sent once in `removed_resources`, which is how
    the incremental protocol says "does not exist". `forced` names are resent even if unchanged
    (endpoints of clusters that were just resent and are warming).
    """
    present = {r.name for r in items}
    send = [r for r in items if st.known.get(r.name) != r.version or r.name in forced]
    known = st.known.keys() if considered is None else considered & st.known.keys()
    removed = [n for n in known if n not in present]
    if not st.wildcard:
        wanted = st.names if considered is None else considered & st.names
        removed.extend(n for n in wanted if n not in present and n not in st.known and n not in st.absent)
    return send, removed


def commit_delta(st: TypeState, sent: Sequence[resources.Resource], removed: Sequence[str]) -> None:
    for r in sent:
        st.known[r.name] = r.version
        st.absent.discard(r.name)
    for name in removed:
        st.known.pop(name, None)
        if name in st.names:
            st.absent.add(name)


def commit_sotw(st: TypeState, sent: Sequence[resources.Resource], incremental: bool) -> None:
    # SotW resends whole sets, so per-resource versions are not needed: keep memory per proxy small
    if not incremental:
        st.count = len(sent)
