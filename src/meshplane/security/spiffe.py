"""SPIFFE identities as Istio writes them: spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT."""

from __future__ import annotations

from dataclasses import dataclass

SCHEME = "spiffe://"
DEFAULT_TRUST_DOMAIN = "cluster.local"


@dataclass(frozen=True, slots=True)
class Identity:
    trust_domain: str
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"


def identity(namespace: str, service_account: str, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> str:
    return str(Identity(trust_domain, namespace, service_account))


def parse(uri: str) -> Identity:
    """Parse an Istio SPIFFE URI (pkg/spiffe ParseIdentity); ValueError names what is wrong."""
    if not uri.startswith(SCHEME):
        raise ValueError(f"identity {uri!r} is not a spiffe:// URI")
    parts = uri[len(SCHEME) :].split("/")
    if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa" or not all(parts):
        raise ValueError(f"identity {uri!r} is not of the form spiffe://TRUST_DOMAIN/ns/NS/sa/SA")
    return Identity(parts[0], parts[2], parts[4])
