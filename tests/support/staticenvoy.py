"""Static Envoy bootstraps for agent component tests (SDS, supervisor) that run without an ADS server.

Only listeners and clusters that consume the agent's SDS secrets, as the generators' sidecar config
does (`default` + `ROOTCA` from the `sds-grpc` cluster, SPIFFE SAN check on the peer).
"""

from __future__ import annotations

from typing import Any

_HTTP_OPTS = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}
_T = "type.googleapis.com/envoy.extensions."
_SDS = {
    "api_config_source": {
        "api_type": "GRPC",
        "transport_api_version": "V3",
        "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}],
    },
    "resource_api_version": "V3",
}


def _addr(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _common_tls(peer_identity: str) -> dict[str, Any]:
    return {
        "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": _SDS}],
        "combined_validation_context": {
            "default_validation_context": {
                "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": peer_identity}}]
            },
            "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": _SDS},
        },
    }


def _hcm(route: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": _T + "filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "http",
            "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    },
                }
            ],
        },
    }


def mtls_server(host: str, port: int, peer_identity: str) -> dict[str, Any]:
    """An inbound listener requiring Istio mTLS from `peer_identity`; answers 200 `ok`."""
    return {
        "name": "inbound",
        "address": _addr(host, port),
        "filter_chains": [
            {
                "filters": [
                    _hcm(
                        {
                            "match": {"prefix": "/"},
                            "direct_response": {"status": 200, "body": {"inline_string": "ok"}},
                        }
                    )
                ],
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": _T + "transport_sockets.tls.v3.DownstreamTlsContext",
                        "require_client_certificate": True,
                        "common_tls_context": _common_tls(peer_identity),
                    },
                },
            }
        ],
    }


def plain_client(host: str, port: int) -> dict[str, Any]:
    """An outbound listener (plain HTTP in) routing to the `upstream` cluster."""
    return {
        "name": "outbound",
        "address": _addr(host, port),
        "filter_chains": [{"filters": [_hcm({"match": {"prefix": "/"}, "route": {"cluster": "upstream"}})]}],
    }


def mtls_upstream(host: str, port: int, peer_identity: str) -> dict[str, Any]:
    return {
        "name": "upstream",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _addr(host, port)}}]}],
        },
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": _T + "transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": "outbound_.80_._.server.test.svc.cluster.local",
                "common_tls_context": _common_tls(peer_identity),
            },
        },
    }


def bootstrap(
    node_id: str,
    admin_pipe: str,
    sds_pipe: str,
    listeners: list[dict[str, Any]],
    clusters: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    sds_cluster = {
        "name": "sds-grpc",
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": _HTTP_OPTS,
        "load_assignment": {
            "cluster_name": "sds-grpc",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": sds_pipe}}}}]}],
        },
    }
    return {
        "node": {"id": node_id, "cluster": "test"},
        "admin": {"address": {"pipe": {"path": admin_pipe}}},
        "static_resources": {"listeners": listeners, "clusters": [sds_cluster, *clusters]},
    }
