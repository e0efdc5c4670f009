"""Istio mutual TLS pieces: SDS secret references, upstream and downstream TLS contexts.

Shapes follow pilot/pkg/networking/core/cluster_tls.go and pilot/pkg/security (BuildInboundTLS):
the workload cert is SDS secret `default`, the trust root is `ROOTCA`, both from the `sds-grpc`
cluster the bootstrap defines (served by the agent on a unix socket).
"""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import wrappers_pb2

from meshplane.xds import protos

SDS_CLUSTER = "sds-grpc"
SECRET_CERT = "default"
SECRET_ROOT = "ROOTCA"
TLS_SOCKET = "envoy.transport_sockets.tls"
RAW_SOCKET = "envoy.transport_sockets.raw_buffer"

# ALPN a client sidecar offers to an in-mesh server (util.ALPNInMeshWithMxc / ALPNInMeshH2WithMxc)
ALPN_IN_MESH = ("istio-peer-exchange", "istio")
ALPN_IN_MESH_H2 = ("istio-peer-exchange", "istio", "h2")
# ALPN an inbound filter chain matches to recognise Istio mTLS (allIstioMtlsALPNs)
ALPN_ISTIO_MTLS = ("istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2")
# ALPN the server side negotiates for HTTP (util.ALPNHttp)
ALPN_HTTP = ("h2", "http/1.1")
# Server-side ciphers (pilot/pkg/security/authn/utils SupportedCiphers)
SUPPORTED_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
)


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def sds_secret(name: str) -> secret_pb2.SdsSecretConfig:
    """Istio's ConstructSdsSecretConfig for `default`/`ROOTCA`: wait for the secret (no fetch timeout)."""
    return secret_pb2.SdsSecretConfig(
        name=name,
        sds_config=config_source_pb2.ConfigSource(
            api_config_source=config_source_pb2.ApiConfigSource(
                api_type=config_source_pb2.ApiConfigSource.GRPC,
                set_node_on_first_message_only=True,
                transport_api_version=config_source_pb2.V3,
                grpc_services=[
                    grpc_service_pb2.GrpcService(
                        envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=SDS_CLUSTER)
                    )
                ],
            ),
            resource_api_version=config_source_pb2.V3,
            initial_fetch_timeout=protos.duration(0),
        ),
    )


def upstream_tls(sni: str, sans: Iterable[str], http2: bool) -> tls_pb2.UpstreamTlsContext:
    """ISTIO_MUTUAL to a mesh endpoint: present `default`, verify the server's SPIFFE id against ROOTCA."""
    return tls_pb2.UpstreamTlsContext(
        sni=sni,
        common_tls_context=tls_pb2.CommonTlsContext(
            tls_params=common_pb2.TlsParameters(
                tls_minimum_protocol_version=common_pb2.TlsParameters.TLSv1_2,
                tls_maximum_protocol_version=common_pb2.TlsParameters.TLSv1_3,
            ),
            alpn_protocols=ALPN_IN_MESH_H2 if http2 else ALPN_IN_MESH,
            tls_certificate_sds_secret_configs=[sds_secret(SECRET_CERT)],
            combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
                default_validation_context=common_pb2.CertificateValidationContext(
                    match_subject_alt_names=[string_pb2.StringMatcher(exact=s) for s in sans]
                ),
                validation_context_sds_secret_config=sds_secret(SECRET_ROOT),
            ),
        ),
    )


def downstream_tls() -> tls_pb2.DownstreamTlsContext:
    """Inbound Istio mTLS: serve `default`, require a client cert that chains to ROOTCA
    (as Istio, no SAN restriction without trust domain aliases)."""
    return tls_pb2.DownstreamTlsContext(
        require_client_certificate=wrappers_pb2.BoolValue(value=True),
        common_tls_context=tls_pb2.CommonTlsContext(
            tls_params=common_pb2.TlsParameters(
                tls_minimum_protocol_version=common_pb2.TlsParameters.TLSv1_2,
                tls_maximum_protocol_version=common_pb2.TlsParameters.TLSv1_3,
                cipher_suites=SUPPORTED_CIPHERS,
            ),
            alpn_protocols=ALPN_HTTP,
            tls_certificate_sds_secret_configs=[sds_secret(SECRET_CERT)],
            combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
                default_validation_context=common_pb2.CertificateValidationContext(),
                validation_context_sds_secret_config=sds_secret(SECRET_ROOT),
            ),
        ),
    )


def tls_socket(ctx: tls_pb2.UpstreamTlsContext | tls_pb2.DownstreamTlsContext) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=protos.to_any(ctx))


def raw_socket() -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name=RAW_SOCKET, typed_config=protos.to_any(raw_buffer_pb2.RawBuffer()))
