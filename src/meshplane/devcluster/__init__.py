"""The dev cluster: an embedded, SQLite-backed server that speaks the Kubernetes API.

A request flows  api/server → api/dispatch → (seams: authn, RBAC, admission) → api/reads |
api/writes | api/watch → controllers/objects → storage/store → storage/persistence, and every
committed write is an event that watchers, garbage collection and the service-account
controllers read.

- `app`        the composition root and in-process Python API (`DevCluster`): starts, stops, wires.
- `launcher`   dev clusters as background processes (`meshplane devcluster serve`), by PID.
- `kubeconfig` kubeconfig documents for a dev cluster (the builder and merge rule live in `kube/`).
- `seams`      the Protocols between the REST core and auth/admission (UserInfo, attributes).
- `security`   auth, RBAC, admission and the ServiceAccount controllers assembled for one cluster.
- `errors`     Kubernetes `Status` errors (`ApiError`) and the dev cluster's internal errors.
- `storage/`   where objects live: store (working set, resourceVersions, events), persistence, meta.
- `api/`       the HTTP surface: dispatch, routing, reads, writes, watch, bodies, protobuf, patch,
               tables, selectors, discovery documents, OpenAPI.
- `schema/`    what kinds exist and what they look like: resources, schemas, validation, defaults, CRDs.
- `controllers/` what runs beside the API: object semantics, GC, bootstrap objects, service accounts,
               PodDisruptionBudget status (`disruption`).
- `auth/`      who is calling and may they: authn, tokens, TokenRequest/TokenReview, RBAC, access
               reviews, the cluster's PKI.
- `admission/` the admission chain (ServiceAccount plugin, mutating and validating webhooks) and the
               webhook client.

`api` reaches `auth` and `admission` only through `seams` (an import-linter contract).
Where is a watch served? `api/watch`. Where is RBAC decided? `auth/rbac`.
"""
