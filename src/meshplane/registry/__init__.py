"""registry: Kubernetes objects of every cluster → the mesh's services and endpoints.

- convert.py       pure: Service / EndpointSlice + Pod + Node → model.Service / model.Endpoint
- cluster.py       ClusterRegistry: one cluster's informers → services and endpoints per hostname
- aggregate.py     one view per hostname across clusters; endpoints kept as per-cluster shards
- multicluster.py  remote secrets → clusters: add, swap once synced, remove, problems (/debug/clusterz)
- meshconfig.py    the `istio` ConfigMap's `mesh` and mesh-wide PeerAuthentication → model.MeshConfig
- metrics.py       registry and multicluster metrics with Istio's names
- errors.py        RegistryError, MeshConfigError

Flow: kube informers → cluster (via convert) → aggregate swaps that cluster's shard and reports
which hostnames changed, EDS-only or full → the composition root enqueues a push; push/ then
reads a snapshot of the aggregate. multicluster adds and removes ClusterRegistries as remote
secrets come and go, so a remote cluster is just one more registry and one more shard.
"""
