"""installer: `meshplane install`, `uninstall`, `manifest generate`, `create-remote-secret` (istioctl's).

- iop.py          IstioOperator files merged in order, `--set PATH=VALUE` overlays
- profiles.py     built-in profiles (default, remote, ...) user input is overlaid on
- schema.py       the supported IstioOperator fields and the validator (unknown fields are errors)
- checks.py       semantic checks: names, addresses, ports, required fields
- config.py       IstioOperator input → one validated InstallConfig (pure)
- render.py       InstallConfig → ordered Kubernetes objects (pure), from:
  pilot.py, gateways.py, remote.py, rbac.py, crds.py, labels.py (istiod, gateways, the remote
  profile's istiod Service, RBAC, CRDs, install labels)
- plan.py         the rendered objects for one cluster with the defaults already there
- manifest.py     objects to and from multi-document YAML
- kubeclient.py   the installer's clients (kubectl's settings) through kube.client
- compare.py      is the live object already what we would apply?
- apply.py        create what is missing, update what differs, skip the rest
- readiness.py    wait until Deployments are available and LoadBalancers addressed; stop at once
                  when their pods cannot pull an image (ImagePullError names it)
- uninstall.py    delete what installs created, selected by install labels
- eastwest.py     the east-west gateway IstioOperator (gen-eastwest-gateway)
- remotesecret.py a remote cluster's reader kubeconfig as istioctl's Secret
- errors.py       InstallError, ConfigError (issues with paths), ClusterError, ReadinessTimeout,
                  ImagePullError, ...

Flow: files and --set → iop → profiles + schema + checks → config.InstallConfig (pure, no
cluster) → plan (render, plus defaults read from the cluster) → apply (compare) → readiness;
uninstall selects what installs created by their labels.
"""
