"""cli: the `meshplane` command; each module parses one command group's flags, calls one function
and prints. No logic lives here.

- main.py             the root command; registers the groups; turns MeshplaneError into `Error: ...`
- common.py           --context/--kubeconfig, the rich console, `fail()`
- discovery.py        `discovery` → discovery.run
- agent.py            `agent bootstrap`, `agent proxy` → agent/
- install.py          `install`, `uninstall`, `manifest generate` → installer/
- remote_secret.py    `create-remote-secret` → installer.remotesecret
- eastwest.py         `gen-eastwest-gateway` → installer.eastwest
- proxy_status.py     `proxy-status` → ctl.debugclient + ctl.proxystatus
- remote_clusters.py  `remote-clusters` → ctl.debugclient (/debug/clusterz; -o wide: /debug/propagationz)
- dashboard.py        `dashboard [--no-browser]` → ctl.dashboard: the console's URL, opened in a browser
- devcluster.py       `devcluster serve` → devcluster/
- lab.py              `lab ...` → lab/
- demo.py             `demo`: the lab, the guide and its verification
- authz.py            `x authz check POD` → ctl.authzcheck

Flow: `meshplane ARGS` → main registers the groups → typer parses the flags → the command calls
its package → output on stdout, errors on stderr as `Error: <message>` with exit code 1.
"""
