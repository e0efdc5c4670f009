"""webhooks: sidecar injection and config validation (Istio's webhooks), served by discovery/webhook.py.

- handler.py    AdmissionReview v1 in over HTTP, AdmissionReview with a JSONPatch out
- validate.py   `/validate`: AdmissionReview v1 in, allowed or denied naming the field (the checks
                are given by discovery/webhook.py)
- injectpath.py `/inject/cluster/C/net/N`: proxy env overrides per remote cluster
- policy.py     whether a pod gets a sidecar (injectRequired, default `enabled` policy)
- settings.py   what sidecars are rendered with: the injector ConfigMap's values
- inject.py     one pod: policy, env overrides, template merge, status annotation, patch
- sidecar.py    the injected parts: istio-init, istio-proxy, volumes, labels, annotations
- proxyconfig.py the pod's proxy.istio.io/config: proxyMetadata as env of istio-proxy and istio-init
- prometheus.py Istio's Prometheus merge: scrape annotations point at the agent (15020), the pod's own
                move into ISTIO_PROMETHEUS_ANNOTATIONS
- jsonpatch.py  RFC 6902 patch from the old pod to the new one
- json_util.py  reading untrusted JSON without crashing on unexpected types
- errors.py     WebhookError, BadReview

Flow: handler reads the review (the pod's API server already applied the webhook's selectors;
no other cluster's namespace labels are consulted) → inject applies policy
and the path's overrides (injectpath), renders the sidecar parts with settings → jsonpatch of old
pod to new → handler answers allowed, with the patch.
"""
