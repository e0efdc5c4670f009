"""Who is calling the dev cluster, and may they.

- `authn`       bearer-token authentication: the admin token, service-account JWTs, Secret tokens.
- `tokens`      service-account tokens as Kubernetes issues and checks them (signing key, claims).
- `tokenapi`    TokenRequest (`serviceaccounts/NAME/token`) and TokenReview.
- `rbac`        RBAC over the stored Role/ClusterRole/bindings: where every request is decided.
- `accessreview` SelfSubjectReview, SelfSubjectAccessReview and SubjectAccessReview.
- `pki`         the cluster's CA, its serving certificate and the admin token.

api/dispatch calls authn then rbac through `seams`; `security` wires them per cluster.
"""
