"""The controllers a lab cluster runs, as kube-controller-manager, kube-scheduler and a cloud do.

- `deployments`    the Deployment and ReplicaSet controllers; `rollout` their arithmetic (pure).
- `scheduler`      binds Pods to the cluster's one Node and registers that Node.
- `endpointslices` the EndpointSlice controller (ready/serving/terminating, zones).
- `loadbalancers`  LoadBalancer addresses for Services of that type.

Each reads `lab.watchcache` views and writes through `lab.kubeapi`.
"""
