"""kube: how meshplane talks to Kubernetes API servers (a dev cluster or a real one).

- client.py    client factory: kubeconfig files and contexts, in-cluster, remote-secret kubeconfigs
- informer.py  list + watch + local cache per kind per cluster; backoff, relist on 410 and periodic
- leader.py    ConfigMap-lock leader election in Istio's record format
- apicalls.py  every API call the control plane makes (group, resource, verbs, scope, which
               credentials), as data: installer/rbac.py renders the roles from it (the RBAC audit)
- errors.py    KubeError, KubeconfigError

Flow: a caller builds a lightkube AsyncClient with client → informers over that client keep a
cache and call back on every change (registry/, discovery/config.py, security/ controllers) →
leader lets one of several replicas run a controller.
"""
