from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from hypothesis import given
from hypothesis import strategies as st_

from meshplane.server import watch
from meshplane.xds import resources as R

CDS, EDS, LDS, RDS = R.TYPE_CDS, R.TYPE_EDS, R.TYPE_LDS, R.TYPE_RDS


def sotw(type_url: str, names=(), nonce: str = "", version: str = "", error: str | None = None):
    req = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=list(names), response_nonce=nonce, version_info=version
    )
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return req


def delta(type_url: str, sub=(), unsub=(), nonce: str = "", initial=None, error: str | None = None):
    req = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url,
        resource_names_subscribe=list(sub),
        resource_names_unsubscribe=list(unsub),
        response_nonce=nonce,
        initial_resource_versions=initial or {},
    )
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return req


def sent(st: watch.TypeState, nonce: str, version: str) -> None:
    st.nonce_sent, st.version_sent = nonce, version


def res(name: str, version: str) -> R.Resource:
    return R.Resource(name, version, None)  # type: ignore[arg-type]


# --- State of the World ---------------------------------------------------------------------


def test_sotw_first_request_creates_a_wildcard_cds_watch_and_needs_a_response() -> None:
    states: dict[str, watch.TypeState] = {}
    d = watch.sotw_request(states, sotw(CDS), 0)
    assert d.kind is watch.Kind.INIT and d.respond
    assert states[CDS].wildcard


def test_sotw_ack_is_recorded_and_not_answered() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.sotw_request(states, sotw(EDS, ["a", "b"]), 0)
    sent(states[EDS], "n1", "v1")
    d = watch.sotw_request(states, sotw(EDS, ["a", "b"], nonce="n1", version="v1"), 5)
    assert d.kind is watch.Kind.ACK and not d.respond
    assert (states[EDS].nonce_acked, states[EDS].version_acked) == ("n1", "v1")


def test_sotw_nack_is_recorded_with_the_rejected_version_and_not_answered() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.sotw_request(states, sotw(CDS), 0)
    sent(states[CDS], "n1", "v1")
    watch.sotw_request(states, sotw(CDS, nonce="n1", version="v1"), 1)
    sent(states[CDS], "n2", "v2")
    d = watch.sotw_request(states, sotw(CDS, nonce="n2", version="v1", error="bad cluster"), 2)
    assert d.kind is watch.Kind.NACK and not d.respond
    nack = states[CDS].last_nack
    assert nack is not None and (nack.nonce, nack.version, nack.message) == ("n2", "v2", "bad cluster")
    # the last ACK stays what the proxy runs
    assert (states[CDS].nonce_acked, states[CDS].version_acked) == ("n1", "v1")


def test_sotw_stale_nonce_is_ignored_even_with_new_names() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.sotw_request(states, sotw(EDS, ["a"]), 0)
    sent(states[EDS], "n1", "v1")
    sent(states[EDS], "n2", "v2")
    d = watch.sotw_request(states, sotw(EDS, ["a", "b"], nonce="n1"), 1)
    assert d.kind is watch.Kind.STALE and not d.respond
    assert states[EDS].names == {"a"} and states[EDS].nonce_acked == ""


def test_sotw_ack_with_new_names_is_answered_and_removals_of_eds_are_not() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.sotw_request(states, sotw(EDS, ["a"]), 0)
    sent(states[EDS], "n1", "v1")
    d = watch.sotw_request(states, sotw(EDS, ["a", "b"], nonce="n1"), 1)
    assert d.kind is watch.Kind.CHANGE and d.respond and d.added == {"b"}
    sent(states[EDS], "n2", "v2")
    d = watch.sotw_request(states, sotw(EDS, ["b"], nonce="n2"), 2)
    assert not d.respond and states[EDS].names == {"b"}


def test_sotw_empty_eds_request_unsubscribes() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.sotw_request(states, sotw(EDS, ["a"]), 0)
    sent(states[EDS], "n1", "v1")
    d = watch.sotw_request(states, sotw(EDS, [], nonce="n1"), 1)
    assert d.kind is watch.Kind.UNSUBSCRIBE and EDS not in states


def test_sotw_cds_request_forces_the_next_eds_answer_for_warming() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.sotw_request(states, sotw(EDS, ["a"]), 0)
    sent(states[EDS], "n1", "v1")
    watch.sotw_request(states, sotw(CDS), 0)
    d = watch.sotw_request(states, sotw(EDS, ["a"], nonce="n1"), 1)
    assert d.respond
    sent(states[EDS], "n2", "v2")
    assert not watch.sotw_request(states, sotw(EDS, ["a"], nonce="n2"), 1).respond


def test_sotw_explicit_cds_names_are_not_wildcard() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.sotw_request(states, sotw(CDS, ["c1"]), 0)
    assert not states[CDS].wildcard and states[CDS].scope == {"c1"}
    watch.sotw_request(states, sotw(LDS, ["*", "l1"]), 0)
    assert states[LDS].wildcard and states[LDS].scope is None


# --- Delta ---------------------------------------------------------------------------------


def test_delta_first_request_without_names_is_wildcard_with_initial_versions() -> None:
    states: dict[str, watch.TypeState] = {}
    d = watch.delta_request(states, delta(CDS, initial={"c1": "h1"}), 0)
    assert d.kind is watch.Kind.INIT and d.respond
    assert states[CDS].wildcard and states[CDS].known == {"c1": "h1"}


def test_delta_subscribe_and_unsubscribe_apply_even_with_a_stale_nonce() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.delta_request(states, delta(EDS, sub=["a", "b"]), 0)
    st = states[EDS]
    st.known = {"a": "1", "b": "1"}
    sent(st, "n2", "v2")
    d = watch.delta_request(states, delta(EDS, sub=["c"], unsub=["a"], nonce="n1"), 1)
    assert d.kind is watch.Kind.STALE and d.respond and d.added == {"c"}
    assert st.names == {"b", "c"} and "a" not in st.known and st.nonce_acked == ""


def test_delta_ack_and_nack() -> None:
    states: dict[str, watch.TypeState] = {}
    watch.delta_request(states, delta(RDS, sub=["r"]), 0)
    sent(states[RDS], "n1", "v1")
    d = watch.delta_request(states, delta(RDS, nonce="n1"), 1)
    assert d.kind is watch.Kind.ACK and not d.respond and states[RDS].version_acked == "v1"
    sent(states[RDS], "n2", "v2")
    d = watch.delta_request(states, delta(RDS, nonce="n2", error="boom"), 2)
    assert d.kind is watch.Kind.NACK and not d.respond
    assert states[RDS].last_nack is not None and states[RDS].last_nack.version == "v2"
    assert states[RDS].version_acked == "v1"


def test_delta_diff_sends_only_changes_and_removals() -> None:
    st = watch.TypeState(CDS, wildcard=True, known={"a": "1", "b": "1", "gone": "1"})
    send, removed = watch.delta_diff([res("a", "1"), res("b", "2"), res("new", "1")], st, None)
    assert [r.name for r in send] == ["b", "new"]
    assert removed == ["gone"]
    watch.commit_delta(st, send, removed)
    assert st.known == {"a": "1", "b": "2", "new": "1"}


def test_delta_diff_limited_scope_does_not_remove_others() -> None:
    st = watch.TypeState(EDS, names=frozenset({"a", "b"}), known={"a": "1", "b": "1"})
    send, removed = watch.delta_diff([res("a", "2")], st, frozenset({"a"}))
    assert [r.name for r in send] == ["a"] and removed == []


def test_delta_diff_tells_a_missing_subscribed_name_once_and_forced_names_are_resent() -> None:
    st = watch.TypeState(EDS, names=frozenset({"a", "missing"}), known={"a": "1"})
    send, removed = watch.delta_diff([res("a", "1")], st, None, forced=frozenset({"a"}))
    assert [r.name for r in send] == ["a"] and removed == ["missing"]
    watch.commit_delta(st, send, removed)
    assert watch.delta_diff([res("a", "1")], st, None) == ([], [])


def test_equal_subscriptions_share_one_set() -> None:
    a: dict[str, watch.TypeState] = {}
    b: dict[str, watch.TypeState] = {}
    names = [f"c{i}" for i in range(100)]
    watch.sotw_request(a, sotw(EDS, names), 0)
    watch.delta_request(b, delta(EDS, sub=list(reversed(names))), 0)
    assert a[EDS].names is b[EDS].names


_types = st_.sampled_from([CDS, EDS, LDS, RDS])
_names = st_.lists(st_.sampled_from(["a", "b", "c", "*", ""]), max_size=4)
_nonce = st_.sampled_from(["", "n1", "n2", "stale"])


@given(
    st_.lists(
        st_.tuples(
            _types,
            _names,
            _names,
            _nonce,
            st_.booleans(),
            st_.dictionaries(st_.sampled_from("abc"), st_.text()),
        ),
        max_size=12,
    )
)
def test_any_request_sequence_keeps_the_state_consistent(steps) -> None:  # type: ignore[no-untyped-def]
    for delta_mode in (False, True):
        states: dict[str, watch.TypeState] = {}
        for i, (t, names, unsub, nonce, nack, initial) in enumerate(steps):
            if delta_mode:
                d = watch.delta_request(
                    states, delta(t, names, unsub, nonce, initial, "x" if nack else None), i
                )
            else:
                d = watch.sotw_request(states, sotw(t, names, nonce, error="x" if nack else None), i)
            assert isinstance(d.kind, watch.Kind)
            if d.kind is watch.Kind.NACK:
                assert not d.respond or delta_mode
            for s in states.values():
                assert isinstance(s.names, frozenset) and watch.WILDCARD not in s.names
                assert not s.wildcard or s.type_url in R.WILDCARD_TYPES or delta_mode
            if t in states:  # pretend the server answered
                sent(states[t], f"n{i % 3}", f"v{i}")
