"""Listener and network filters shared by sidecar and gateway listeners, as Envoy typed configs."""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.core.v3 import protocol_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.type.v3 import range_pb2
from google.protobuf import wrappers_pb2

from meshplane.xds import protos

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
ROUTER = "envoy.filters.http.router"
CORS = "envoy.filters.http.cors"
FAULT = "envoy.filters.http.fault"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
HTTP_INSPECTOR = "envoy.filters.listener.http_inspector"
ORIGINAL_DST = "envoy.filters.listener.original_dst"
# what http_inspector reports for plaintext HTTP; a chain matching these is the sniffed-HTTP chain
SNIFFED_HTTP = ("http/1.1", "h2c")

_HCM = hcm_pb2.HttpConnectionManager


def tls_inspector() -> listener_components_pb2.ListenerFilter:
    return listener_components_pb2.ListenerFilter(
        name=TLS_INSPECTOR, typed_config=protos.to_any(tls_inspector_pb2.TlsInspector())
    )


def http_inspector(only_ports: Sequence[int] = ()) -> listener_components_pb2.ListenerFilter:
    """Sniffs plaintext HTTP; with `only_ports`, runs only for connections to those (original
    destination) ports, so a declared server-first TCP port is not held waiting for client bytes
    (Istio disables it the same way, listener_builder.go)."""
    f = listener_components_pb2.ListenerFilter(
        name=HTTP_INSPECTOR, typed_config=protos.to_any(http_inspector_pb2.HttpInspector())
    )
    if only_ports:
        pred = listener_components_pb2.ListenerFilterChainMatchPredicate
        f.filter_disabled.CopyFrom(
            pred(
                not_match=pred(
                    or_match=pred.MatchSet(
                        rules=[
                            pred(destination_port_range=range_pb2.Int32Range(start=p, end=p + 1))
                            for p in only_ports
                        ]
                    )
                )
            )
        )
    return f


def original_dst() -> listener_components_pb2.ListenerFilter:
    return listener_components_pb2.ListenerFilter(
        name=ORIGINAL_DST, typed_config=protos.to_any(original_dst_pb2.OriginalDst())
    )


def _router() -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(name=ROUTER, typed_config=protos.to_any(router_pb2.Router()))


def _route_policy_filters() -> list[hcm_pb2.HttpFilter]:
    """CORS and fault injection, inert until a route carries their per-route config (a
    VirtualService's corsPolicy / fault), in the order Istio's outbound HCM has them."""
    return [
        hcm_pb2.HttpFilter(name=CORS, typed_config=protos.to_any(cors_pb2.Cors())),
        hcm_pb2.HttpFilter(name=FAULT, typed_config=protos.to_any(fault_pb2.HTTPFault())),
    ]


def hcm(
    stat_prefix: str,
    *,
    rds_name: str = "",
    route_config: route_pb2.RouteConfiguration | None = None,
    inbound: bool = False,
    explicit_proxy: bool = False,
    http_filters: Sequence[hcm_pb2.HttpFilter] = (),
) -> listener_components_pb2.Filter:
    """An HTTP connection manager with routes from RDS (`rds_name`) or inline (`route_config`).

    Inbound: forward the caller's client-cert details (XFCC) to the app, appending the peer's
    SPIFFE URI as Istio's sidecars do. `explicit_proxy` accepts absolute-form request targets,
    so an app can use the outbound listener as its HTTP proxy (`http_proxy=`). `http_filters`
    run before the router (the inbound RBAC filters, xds/rbac.py)."""
    cfg = _HCM(
        stat_prefix=stat_prefix,
        codec_type=_HCM.AUTO,
        http_filters=[*http_filters, _router()],
        use_remote_address=wrappers_pb2.BoolValue(value=False),
        normalize_path=wrappers_pb2.BoolValue(value=True),
        path_with_escaped_slashes_action=_HCM.KEEP_UNCHANGED,
    )
    if rds_name:
        cfg.rds.CopyFrom(hcm_pb2.Rds(config_source=protos.ads_source(), route_config_name=rds_name))
    elif route_config is not None:
        cfg.route_config.CopyFrom(route_config)
    else:
        raise ValueError("hcm needs rds_name or route_config")
    if inbound:
        cfg.forward_client_cert_details = _HCM.APPEND_FORWARD
        cfg.set_current_client_cert_details.CopyFrom(
            _HCM.SetCurrentClientCertDetails(subject=wrappers_pb2.BoolValue(value=True), dns=True, uri=True)
        )
    if rds_name and not inbound:  # outbound and gateway routes from VirtualServices
        routed = list(cfg.http_filters)
        del cfg.http_filters[:]
        cfg.http_filters.extend([*_route_policy_filters(), *routed])
    if explicit_proxy:
        cfg.http_protocol_options.CopyFrom(
            protocol_pb2.Http1ProtocolOptions(allow_absolute_url=wrappers_pb2.BoolValue(value=True))
        )
    return listener_components_pb2.Filter(name=HCM, typed_config=protos.to_any(cfg))


def tcp_proxy(stat_prefix: str, clusters: Sequence[tuple[str, int]]) -> listener_components_pb2.Filter:
    """To one cluster, or weighted across several ((name, weight) pairs)."""
    cfg = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    if len(clusters) == 1:
        cfg.cluster = clusters[0][0]
    else:
        cfg.weighted_clusters.CopyFrom(
            tcp_proxy_pb2.TcpProxy.WeightedCluster(
                clusters=[
                    tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(name=n, weight=w)
                    for n, w in clusters
                ]
            )
        )
    return listener_components_pb2.Filter(name=TCP_PROXY, typed_config=protos.to_any(cfg))
