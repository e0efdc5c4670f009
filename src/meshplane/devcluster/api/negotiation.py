"""Content negotiation: which representation of a resource an `Accept` header asks for.

As kube-apiserver decides it (k8s.io/apiserver pkg/endpoints/handlers/negotiation/negotiate.go,
NegotiateOutputMediaType and acceptMediaTypeOptions; the transform rule is RequestScope.
AllowsMediaTypeTransform in handlers/rest.go): the Accept clauses are ordered by q (then exact types
before wildcards, otherwise as sent); the first clause that names a media type the endpoint can
produce *with its parameters* wins. `as=`/`g=`/`v=` ask for a conversion: `Table` (JSON or YAML
only) or `PartialObjectMetadata[List]` (any media type), both in meta.k8s.io v1 or v1beta1; a clause
asking for anything else is skipped. `stream=watch` needs a streaming encoding. No clause left ->
406 NotAcceptable.

The dev cluster encodes full objects as JSON or YAML, never protobuf (as kube-apiserver does for
custom resources): a clause naming protobuf for a full object is skipped like any other it cannot
serve, so client-go's `application/vnd.kubernetes.protobuf, application/json` gets JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshplane.devcluster import errors

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"

TABLE = "Table"
PARTIAL = "PartialObjectMetadata"
PARTIAL_LIST = "PartialObjectMetadataList"
META_GROUP = "meta.k8s.io"
_META_VERSIONS = ("v1", "v1beta1")
_ORDER = (JSON, YAML, PROTOBUF)  # the serializers in kube-apiserver's order


@dataclass(frozen=True, slots=True)
class Output:
    media_type: str  # JSON | YAML | PROTOBUF
    convert: str = ""  # "" (the object itself) | TABLE | PARTIAL | PARTIAL_LIST
    version: str = "v1"  # meta.k8s.io version of the conversion

    @property
    def api_version(self) -> str:
        return f"{META_GROUP}/{self.version}"


@dataclass(frozen=True, slots=True)
class _Clause:
    type: str
    subtype: str
    q: float
    params: dict[str, str]
    index: int


def parse_accept(header: str) -> list[_Clause]:
    """Accept clauses in the order they are tried (github.com/munnerz/goautoneg ParseAccept)."""
    out: list[_Clause] = []
    for i, part in enumerate(header.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        mt = pieces[0]
        if not mt:
            continue
        typ, _, sub = mt.partition("/")
        if typ == "*" and not sub:
            sub = "*"
        q = 1.0
        params: dict[str, str] = {}
        for p in pieces[1:]:
            k, _, v = p.partition("=")
            k, v = k.strip(), v.strip()
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
            elif k:
                params[k] = v
        out.append(_Clause(typ.lower(), sub.lower(), q, params, i))
    return sorted(out, key=lambda c: (-c.q, c.type == "*", c.subtype == "*", c.index))


def _offered(convert: str, stream: bool) -> tuple[str, ...]:
    """The media types this dev cluster can write for a conversion (stream: for a watch)."""
    if convert in (PARTIAL, PARTIAL_LIST):
        return (JSON, PROTOBUF) if stream else _ORDER
    return (JSON,) if stream else (JSON, YAML)


def _candidate(clause: _Clause, stream: bool) -> Output | None:
    as_, g, v = clause.params.get("as"), clause.params.get("g"), clause.params.get("v")
    convert = ""
    version = "v1"
    if as_ is not None or g is not None or v is not None:
        if g != META_GROUP or v not in _META_VERSIONS or as_ not in (TABLE, PARTIAL, PARTIAL_LIST):
            return None
        convert, version = as_, v
    s = clause.params.get("stream", "")
    if s and s != "watch":
        return None
    for mt in _ORDER:
        typ, _, sub = mt.partition("/")
        if not (
            (clause.type == typ and clause.subtype in (sub, "*"))
            or (clause.type, clause.subtype) == ("*", "*")
        ):
            continue
        if s and mt == YAML:
            continue  # YAML has no streaming form
        if mt not in _offered(convert, stream):
            continue
        return Output(mt, convert, version)
    return None


def negotiate(header: str, *, stream: bool = False) -> Output:
    """The representation to write for `Accept: header`; 406 when none can be written."""
    if not header.strip():
        return Output(JSON)
    for clause in parse_accept(header):  # q=0 clauses too: kube-apiserver does not skip them
        out = _candidate(clause, stream)
        if out is not None:
            return out
    raise not_acceptable(stream)


def accepted_media_types(stream: bool) -> list[str]:
    """What the dev cluster can write, as a 406 message lists it."""
    partial = [f"{PROTOBUF};as={k};g={META_GROUP};v=v1" for k in (PARTIAL, PARTIAL_LIST)]
    if stream:
        return [f"{JSON};stream=watch", *(p + ";stream=watch" for p in partial[:1])]
    return [JSON, YAML, *partial]


def not_acceptable(stream: bool = False, message: str = "") -> errors.ApiError:
    """kube-apiserver's 406 (negotiation.NewNotAcceptableError): reason NotAcceptable."""
    text = message or "only the following media types are accepted: " + ", ".join(
        accepted_media_types(stream)
    )
    return errors.ApiError(406, text, "NotAcceptable")
