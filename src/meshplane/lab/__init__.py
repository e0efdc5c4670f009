"""The lab: two dev clusters on one machine, each with a node runtime that runs its Pods.

- `launcher`    `lab up|down|status`: the dev clusters and node runtimes as background processes,
                their state file, stopped by PID; the network mode (netns, else loopback) and, in
                netns mode, the lab's bridges and chains (`network/bringup`).
- `guide`       `lab guide`: the primary-remote install guide, run with the user's commands.
- `verify`      `lab verify`: the guide's "verify the installation" on the lab.
- `podexec`     `lab exec POD -- COMMAND` in netns mode: any command in the pod's namespace.
- `execreq`     `lab exec … -- curl URL` in loopback mode: one request sent as a pod would send it.
- `kubeapi`     the node runtime's writes to its dev cluster (lightkube, dicts in and out).
- `watchcache`  one kind of one cluster, watched: JSON dicts and (old, new) handlers.
- `addresses`   pod IPs, each pod's own "localhost", LoadBalancer addresses.
- `errors`      the lab's errors.
- `node/`       what a node runs: `app` (the node runtime's composition root, `lab node`), the
                kubelet, one pod worker per Pod (sandbox, init containers, containers as
                processes, probes, status), volumes, images, pod networks (netns mode),
                kube-proxy (iptables DNAT in netns mode, a userspace proxy in loopback mode), DNS.
- `network/`    the pod network toolkit: the lab's network plan, address ranges checked against the
                host's routes, bridges, a network namespace and veth per pod, the host's guard and
                Service chains, the pod's resolver files, and a ledger of everything made so that
                `lab down` removes it by name, even after a crash.
- `controllers/` what a control plane runs for the lab: Deployments/ReplicaSets (`rollout` is their
                arithmetic), the scheduler, EndpointSlices, LoadBalancers.
- `apps/`       the sample apps the sample images stand for (helloworld, idle).

Data flows  dev cluster API → watchcache → controllers / kubelet → kubeapi → dev cluster API;
a Pod bound to the node → kubelet → podworker → node/process (where a pod's processes start).
"""
