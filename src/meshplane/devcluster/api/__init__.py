"""The dev cluster's HTTP surface: Kubernetes REST, as kube-apiserver answers it.

- `server`      the HTTPS listener: one aiohttp catch-all route into `dispatch`.
- `dispatch`    authentication and authorization (through `seams`), then the verb handler; errors
                become `Status` bodies.
- `routing`     API paths → the resource they address (`Target`).
- `context`     what every handler needs, assembled once by `app.DevCluster`.
- `reads`       get and list (selectors, paging, resourceVersion rules).
- `writes`      create, update, patch, delete, deletecollection (defaults, validation, admission).
- `watch`       watch streams (chunked JSON lines, bookmarks, timeouts); `watchlines` encodes each
                event once for every watcher.
- `bodies`      request bodies: size limit, media types, JSON/YAML; `protobuf` decodes Kubernetes'
                protobuf bodies and encodes the metadata-only representations.
- `negotiation` which representation an Accept header asks for (kube-apiserver's rules; 406).
- `representation` writes objects, lists and watch events in it: JSON/YAML objects, Tables,
                PartialObjectMetadata[List] in JSON, YAML or protobuf.
- `scale`       the scale subresource (autoscaling/v1 Scale) of deployments, replicasets,
                statefulsets and replicationcontrollers.
- `podstreams`  pods/log, pods/exec, pods/attach (and pods/portforward, refused): checked as
                kube-apiserver checks them, then proxied to the pod's node's kubelet through
                `kubeletproxy` (its endpoint from the Node, the API server's kubelet client cert).
- `eviction`    pods/eviction (policy/v1 Eviction): PodDisruptionBudgets honoured, 429 when not.
- `patch`       JSON merge patch, JSON patch and strategic merge patch.
- `fieldmanager` field ownership (metadata.managedFields, FieldsV1) recorded on every write through
                `writes`, and server-side apply: conflicts (409), force, removal of dropped fields.
- `selectors`   label and field selectors.  `tables` server-side printing for `kubectl get`.
- `responses`   JSON responses with the exact Content-Type clients compare against.
- `discovery`   /api, /apis and aggregated discovery documents.  `openapi` OpenAPI v3 documents
                and the Swagger 2.0 /openapi/v2 document; `openapi_pb` its gnostic protobuf form
                (`_gen/`: the openapi.v2 messages generated from gnostic's .proto).

A request flows  server → dispatch → routing → reads | writes | watch → controllers/objects →
storage/store.
"""
