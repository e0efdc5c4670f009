"""Admission in the dev cluster, after authorization and before storage.

- `chain`         the built-in ServiceAccount plugin, then mutating and validating webhooks,
                  as kube-apiserver orders them.
- `webhookclient` calling one admission webhook over HTTPS (AdmissionReview v1/v1beta1, timeouts,
                  failurePolicy, the caBundle).

api/writes calls the chain through `seams.Admission`.
"""
