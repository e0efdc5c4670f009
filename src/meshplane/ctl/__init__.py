"""ctl: istioctl-side clients of the control plane, used by `meshplane proxy-status` and `remote-clusters`.

- debugclient.py  finds the discovery servers (--istiod-url, or the running `app=istiod` pods through
                  the Kubernetes API) and fetches their JSON debug pages (`/debug/syncz`, `/debug/clusterz`)
- dashboard.py    finds a control plane whose console (/console/ on 15014) answers, for `meshplane dashboard`
- proxystatus.py  turns `/debug/syncz` entries into istioctl's sync table (SYNCED, STALE, NOT SENT)
                  and lays tables out as Go's tabwriter does
- authzcheck.py   `x authz check POD`: the AuthorizationPolicies that apply to a pod and the Envoy
                  RBAC they become (policy/ selection, xds/rbac.py)
- errors.py       CtlError and SyncStatusError (a server that cannot be found, reached or read)

Flow: cli → debugclient.targets → debugclient.collect (one page per server, errors per server) →
proxystatus.rows / tabulate → text printed by the CLI. Nothing here runs inside the control plane:
ctl talks to it only over HTTP, as istioctl does.
"""
