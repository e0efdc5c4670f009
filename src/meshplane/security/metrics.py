"""The CA's Prometheus counters, Istio's `citadel_server_*` names, on the registry the root passes in.

prometheus-client exposes a counter named `x` as `x_total`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

# csr_sign_err_count error labels, as Istio's caerror types
SIGN_ERR_TTL = "TTL_ERROR"
SIGN_ERR_CERT_GEN = "CERT_GEN_ERROR"
SIGN_ERR_UNSUPPORTED = "UNSUPPORTED"

# meshplane_ca_request_errors reasons: one per way a request can be refused
REASON_TOO_LARGE = "too_large"
REASON_MALFORMED = "malformed_request"
REASON_AUTHN = "authentication"
REASON_PERMISSION = "permission_denied"
REASON_CSR = "csr_parsing"
REASON_SIGN = "sign_error"
REASON_INTERNAL = "internal"


class CaMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.csr = Counter(
            "citadel_server_csr_count", "The number of CSRs received by the CA server.", registry=registry
        )
        self.authn_error = Counter(
            "citadel_server_authentication_failure_count",
            "The number of authentication failures.",
            registry=registry,
        )
        self.csr_parsing_error = Counter(
            "citadel_server_csr_parsing_err_count",
            "The number of errors occurred when parsing the CSR.",
            registry=registry,
        )
        self.id_extraction_error = Counter(
            "citadel_server_id_extraction_err_count",
            "The number of errors occurred when extracting or matching the ID in the CSR.",
            registry=registry,
        )
        self.sign_error = Counter(
            "citadel_server_csr_sign_err_count",
            "The number of errors occurred when signing the CSR.",
            ["error"],
            registry=registry,
        )
        self.success = Counter(
            "citadel_server_success_cert_issuance_count",
            "The number of certificates issuances that have succeeded.",
            registry=registry,
        )
        self.ca_reload_errors = Counter(
            "meshplane_ca_reload_errors",
            "Changes of the CA Secrets refused (the CA in use keeps serving), by Secret.",
            ["secret"],
            registry=registry,
        )
        self.ca_reloads = Counter(
            "meshplane_ca_reloads",
            "CA key material reloaded from a changed Secret.",
            registry=registry,
        )
        self.request_errors = Counter(
            "meshplane_ca_request_errors",
            "CreateCertificate requests refused, by reason.",
            ["reason"],
            registry=registry,
        )
