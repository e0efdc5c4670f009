"""What runs beside the dev cluster's API, as kube-controller-manager and the registry do.

- `objects`         API semantics over the store: namespaces, generateName, ClusterIPs,
                    finalizers, graceful deletion (`ObjectApi`, used by REST writes too).
- `gc`              garbage collection by ownerReferences, and namespace deletion.
- `bootstrap`       objects every cluster has from the start (namespaces, `kubernetes` Service).
- `serviceaccounts` the default ServiceAccount per namespace, legacy token Secrets, root CA
                    ConfigMaps.
- `disruption`      PodDisruptionBudget status (what evictions check), as the disruption
                    controller writes it.

They read storage/store events and write through `objects`.
"""
