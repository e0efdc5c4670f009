"""A VirtualService's `http` routes as Envoy routes: the one route builder of sidecars and gateways.

As Istio's pilot/pkg/networking/core/route/route.go (translateRoute and its helpers):
- each match of an HTTPRoute is one Envoy route, in order; matches on another port, another
  gateway, or a source (sourceLabels/sourceNamespace) that is not this proxy are left out when
  the routes are built (a route whose matches are all left out is skipped); a route without
  matches matches everything;
- uri exact/prefix/regex → path/prefix/safe_regex (ignoreUriCase: case-insensitive); scheme,
  method and authority → the `:scheme`/`:method`/`:authority` headers; headers and
  withoutHeaders (inverted) → header matchers, an empty match means "present"; queryParams →
  query parameter matchers;
- destinations → `outbound|PORT|SUBSET|HOST` (a destination without port takes the service's
  only port, else the port of the request), one cluster or weighted clusters (with each
  destination's header operations); the hash policy of consistent-hash DestinationRules when
  every destination has the same one;
- redirect → RedirectAction, directResponse → DirectResponseAction, rewrite → prefix_rewrite /
  host_rewrite_literal / regex_rewrite, timeout (0, Envoy's "none", when unset), retries
  (retry.go ConvertPolicy: Istio's default policy when unset, none with attempts 0, retryOn codes
  → retriable_status_codes), fault (HTTPFault per route: fixed delay, HTTP abort, percentages
  in millionths), mirror/mirrors (request_mirror_policies with mirrorPercentage), header
  operations (set overwrites, add appends, remove) and corsPolicy (CorsPolicy per route).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import service
from meshplane.model.ids import Hostname
from meshplane.networking import config as networking_config
from meshplane.networking import virtualservice as vs_model
from meshplane.xds import filters, naming, protos, trafficpolicy

log = logging.getLogger(__name__)

Services = Mapping[Hostname, service.Service]
_HV = base_pb2.HeaderValueOption
_REDIRECT_CODES = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}


@dataclass(frozen=True, slots=True)
class Scope:
    """Whom the routes are for: a sidecar (`gateway` = "mesh") or a gateway (`ns/name`), the port of
    the route table, and the proxy's labels and namespace (source matches, DestinationRules)."""

    gateway: str
    port: int
    labels: Mapping[str, str]
    namespace: str
    services: Services
    networking: networking_config.NetworkingConfig


def _string(m: vs_model.StringMatch, ignore_case: bool = False) -> string_pb2.StringMatcher:
    if m.kind is vs_model.MatchKind.EXACT:
        return string_pb2.StringMatcher(exact=m.value, ignore_case=ignore_case)
    if m.kind is vs_model.MatchKind.PREFIX:
        return string_pb2.StringMatcher(prefix=m.value, ignore_case=ignore_case)
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=m.value))


def _header(name: str, m: vs_model.StringMatch | None, invert: bool = False) -> rc.HeaderMatcher:
    if m is None:
        return rc.HeaderMatcher(name=name, present_match=True, invert_match=invert)
    return rc.HeaderMatcher(name=name, string_match=_string(m), invert_match=invert)


def route_match(m: vs_model.HTTPMatch | None) -> rc.RouteMatch:
    out = rc.RouteMatch(prefix="/")
    if m is None:
        return out
    if m.uri is not None:
        if m.uri.kind is vs_model.MatchKind.EXACT:
            out = rc.RouteMatch(path=m.uri.value)
        elif m.uri.kind is vs_model.MatchKind.PREFIX:
            out = rc.RouteMatch(prefix=m.uri.value)
        else:
            out = rc.RouteMatch(safe_regex=regex_pb2.RegexMatcher(regex=m.uri.value))
    if m.ignore_uri_case:
        out.case_sensitive.value = False
    for name, sm in ((":scheme", m.scheme), (":method", m.method), (":authority", m.authority)):
        if sm is not None:
            out.headers.append(_header(name, sm))
    out.headers.extend(_header(h.name, h.match) for h in m.headers)
    out.headers.extend(_header(h.name, h.match, invert=True) for h in m.without_headers)
    for q in m.query_params:
        if q.match is None:
            out.query_parameters.append(rc.QueryParameterMatcher(name=q.name, present_match=True))
        else:
            out.query_parameters.append(rc.QueryParameterMatcher(name=q.name, string_match=_string(q.match)))
    return out


def destination_cluster(dest: vs_model.Destination, services: Services, request_port: int = 0) -> str | None:
    """`outbound|PORT|SUBSET|HOST`; a destination without port takes the service's only port, else
    the port the request arrived on when the service has it; None when neither decides."""
    port = dest.port
    if port == 0:
        svc = services.get(Hostname(dest.host))
        if svc is None:
            return None
        numbers = {p.port for p in svc.ports}
        if len(numbers) == 1:
            port = next(iter(numbers))
        elif request_port in numbers:
            port = request_port
        else:
            return None
    return naming.outbound_cluster(dest.host, port, dest.subset)


def weighted(
    routes: Iterable[vs_model.RouteDestination], services: Services, request_port: int, where: str
) -> list[tuple[vs_model.RouteDestination, str, int]]:
    """(destination, cluster, weight) of each destination with a weight above 0; a destination without weight
    gets an equal share; one whose port cannot be decided is skipped (and logged)."""
    items = list(routes)
    out = []
    for rd in items:
        name = destination_cluster(rd.destination, services, request_port)
        if name is None:
            log.warning(
                "route destination skipped: no port given and not one the service has host=%s %s",
                rd.destination.host,
                where,
            )
            continue
        weight = rd.weight if rd.weight is not None else 100 // max(len(items), 1)
        if weight > 0:
            out.append((rd, name, weight))
    return out


def _applies(m: vs_model.HTTPMatch, vs: vs_model.VirtualService, scope: Scope) -> bool:
    if m.port and m.port != scope.port:
        return False
    if m.gateways and scope.gateway not in m.gateways:
        return False
    if not m.gateways and scope.gateway not in vs.gateways:
        return False
    return m.selects_source(scope.labels, scope.namespace)


def _percent(value: float) -> percent_pb2.FractionalPercent:
    """Istio's translatePercentToFractionalPercent: millionths."""
    return percent_pb2.FractionalPercent(
        numerator=round(value * 10000), denominator=percent_pb2.FractionalPercent.MILLION
    )


def _header_options(ops: vs_model.HeaderOps) -> list[base_pb2.HeaderValueOption]:
    out = [
        _HV(header=base_pb2.HeaderValue(key=k, value=v), append_action=_HV.OVERWRITE_IF_EXISTS_OR_ADD)
        for k, v in ops.set
    ]
    out += [
        _HV(header=base_pb2.HeaderValue(key=k, value=v), append_action=_HV.APPEND_IF_EXISTS_OR_ADD)
        for k, v in ops.add
    ]
    return out


# Istio's default retry policy (pilot/pkg/networking/core/route/retry DefaultPolicy)
RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


def default_retry_policy() -> rc.RetryPolicy:
    return rc.RetryPolicy(
        retry_on=RETRY_ON,
        num_retries=wrappers_pb2.UInt32Value(value=2),
        retry_host_predicate=[
            rc.RetryPolicy.RetryHostPredicate(
                name="envoy.retry_host_predicates.previous_hosts",
                typed_config=protos.to_any(previous_hosts_pb2.PreviousHostsPredicate()),
            )
        ],
        host_selection_retry_max_attempts=5,
        retriable_status_codes=[503],
    )


def retry_policy(r: vs_model.Retries | None) -> rc.RetryPolicy | None:
    """retry.go ConvertPolicy: unset → Istio's default; attempts 0 → none; numbers in retryOn are
    status codes (and imply `retriable-status-codes`)."""
    policy = default_retry_policy()
    if r is None:
        return policy
    if r.attempts <= 0:
        return None
    policy.num_retries.value = r.attempts
    if r.retry_on:
        parts = [p.strip() for p in r.retry_on.split(",")]
        codes = [int(p) for p in parts if p.isdigit()]
        names = [p for p in parts if not p.isdigit()]
        if codes and "retriable-status-codes" not in names:
            names.append("retriable-status-codes")
        policy.retry_on = ",".join(names)
        del policy.retriable_status_codes[:]
        policy.retriable_status_codes.extend(codes)
    if r.per_try_timeout_seconds is not None:
        policy.per_try_timeout.CopyFrom(protos.duration(r.per_try_timeout_seconds))
    return policy


def _fault(f: vs_model.Fault) -> fault_pb2.HTTPFault:
    out = fault_pb2.HTTPFault()
    if f.delay_seconds is not None:
        out.delay.CopyFrom(
            common_fault_pb2.FaultDelay(
                fixed_delay=protos.duration(f.delay_seconds), percentage=_percent(f.delay_percent)
            )
        )
    if f.abort_status is not None:
        out.abort.CopyFrom(
            fault_pb2.FaultAbort(http_status=f.abort_status, percentage=_percent(f.abort_percent))
        )
    return out


def _cors(c: vs_model.CorsPolicy) -> cors_pb2.CorsPolicy:
    out = cors_pb2.CorsPolicy(
        allow_origin_string_match=[_string(o) for o in c.allow_origins],
        allow_methods=",".join(c.allow_methods),
        allow_headers=",".join(c.allow_headers),
        expose_headers=",".join(c.expose_headers),
        filter_enabled=base_pb2.RuntimeFractionalPercent(
            default_value=percent_pb2.FractionalPercent(numerator=100)
        ),
    )
    if c.max_age_seconds is not None:
        out.max_age = str(int(c.max_age_seconds))
    if c.allow_credentials is not None:
        out.allow_credentials.value = c.allow_credentials
    return out


def _hash_policy(
    dests: Iterable[tuple[vs_model.Destination, str]], scope: Scope
) -> list[rc.RouteAction.HashPolicy]:
    """The consistent-hash policy shared by every destination's DestinationRule, else none."""
    found = []
    for dest, cluster in dests:
        rule = scope.networking.destination_rule(dest.host, scope.namespace)
        port = naming.parse_cluster(cluster).port
        found.append(trafficpolicy.hash_policy(rule.policy(port, dest.subset).load_balancer) if rule else [])
    if found and all(f == found[0] for f in found):
        return found[0]
    return []


def _action(route: vs_model.HTTPRoute, scope: Scope, where: str) -> rc.RouteAction | None:
    dests = weighted(route.routes, scope.services, scope.port, where)
    if not dests:
        return None
    action = rc.RouteAction(
        timeout=protos.duration(route.timeout_seconds or 0.0),
        max_stream_duration=rc.RouteAction.MaxStreamDuration(
            max_stream_duration=protos.duration(0), grpc_timeout_header_max=protos.duration(0)
        ),
    )
    retries = retry_policy(route.retries)
    if retries is not None:
        action.retry_policy.CopyFrom(retries)
    if len(dests) == 1:
        action.cluster = dests[0][1]
    else:
        action.weighted_clusters.CopyFrom(
            rc.WeightedCluster(
                clusters=[
                    rc.WeightedCluster.ClusterWeight(
                        name=name,
                        weight=wrappers_pb2.UInt32Value(value=weight),
                        request_headers_to_add=_header_options(rd.headers.request),
                        request_headers_to_remove=rd.headers.request.remove,
                        response_headers_to_add=_header_options(rd.headers.response),
                        response_headers_to_remove=rd.headers.response.remove,
                    )
                    for rd, name, weight in dests
                ]
            )
        )
    action.hash_policy.extend(_hash_policy(((rd.destination, n) for rd, n, _ in dests), scope))
    rw = route.rewrite
    if rw is not None:
        if rw.uri is not None:
            action.prefix_rewrite = rw.uri
        if rw.authority:
            action.host_rewrite_literal = rw.authority
        if rw.regex is not None:
            action.regex_rewrite.CopyFrom(
                regex_pb2.RegexMatchAndSubstitute(
                    pattern=regex_pb2.RegexMatcher(regex=rw.regex[0]), substitution=rw.regex[1]
                )
            )
    for m in route.mirrors:
        cluster = destination_cluster(m.destination, scope.services, scope.port)
        if cluster is None:
            log.warning(
                "mirror skipped: no port given and not one the service has host=%s %s",
                m.destination.host,
                where,
            )
            continue
        action.request_mirror_policies.append(
            rc.RouteAction.RequestMirrorPolicy(
                cluster=cluster,
                runtime_fraction=base_pb2.RuntimeFractionalPercent(default_value=_percent(m.percent)),
            )
        )
    return action


def _route(
    route: vs_model.HTTPRoute, name: str, match: vs_model.HTTPMatch | None, scope: Scope, where: str
) -> rc.Route | None:
    out = rc.Route(name=name, match=route_match(match))
    if route.direct_response is not None:
        out.direct_response.CopyFrom(
            rc.DirectResponseAction(
                status=route.direct_response.status,
                body=base_pb2.DataSource(inline_string=route.direct_response.body)
                if route.direct_response.body
                else None,
            )
        )
    elif route.redirect is not None:
        r = route.redirect
        redirect = rc.RedirectAction(response_code=_REDIRECT_CODES[r.code])
        if r.uri:
            redirect.path_redirect = r.uri
        if r.authority:
            redirect.host_redirect = r.authority
        if r.port:
            redirect.port_redirect = r.port
        if r.scheme:
            redirect.scheme_redirect = r.scheme
        out.redirect.CopyFrom(redirect)
    else:
        action = _action(route, scope, where)
        if action is None:
            return None
        out.route.CopyFrom(action)
    headers = route.headers
    if len(route.routes) == 1:  # a single destination's operations apply to the route (Istio)
        d = route.routes[0].headers
        headers = vs_model.Headers(
            vs_model.HeaderOps(
                headers.request.set + d.request.set,
                headers.request.add + d.request.add,
                headers.request.remove + d.request.remove,
            ),
            vs_model.HeaderOps(
                headers.response.set + d.response.set,
                headers.response.add + d.response.add,
                headers.response.remove + d.response.remove,
            ),
        )
    out.request_headers_to_add.extend(_header_options(headers.request))
    out.request_headers_to_remove.extend(headers.request.remove)
    out.response_headers_to_add.extend(_header_options(headers.response))
    out.response_headers_to_remove.extend(headers.response.remove)
    if route.fault is not None:
        out.typed_per_filter_config[filters.FAULT].CopyFrom(protos.to_any(_fault(route.fault)))
    if route.cors is not None:
        out.typed_per_filter_config[filters.CORS].CopyFrom(protos.to_any(_cors(route.cors)))
    return out


def http_routes(vs: vs_model.VirtualService, scope: Scope) -> list[rc.Route]:
    """The Envoy routes of `vs` for this scope, in order."""
    out = []
    for i, route in enumerate(vs.http):
        where = f"vs={vs.key} http[{i}]"
        name = route.name or f"{vs.key}.{i}"
        matches: list[vs_model.HTTPMatch | None]
        if route.matches:
            matches = [m for m in route.matches if _applies(m, vs, scope)]
            if not matches:
                continue
        else:
            if scope.gateway not in vs.gateways:
                continue
            matches = [None]
        for m in matches:
            built = _route(route, name, m, scope, where)
            if built is not None:
                out.append(built)
    return out


def sidecar_virtual_service(host: Hostname, scope: Scope) -> vs_model.VirtualService | None:
    """The VirtualService routing `host` for this sidecar (NetworkingConfig.sidecar_virtual_service)."""
    return scope.networking.sidecar_virtual_service(host, scope.namespace)
