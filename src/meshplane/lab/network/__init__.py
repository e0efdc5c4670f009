"""The lab's pod network toolkit: a network namespace per pod, veths on a lab bridge, only the
lab's own address ranges routed, and a ledger so that everything made can be removed by name.

- `command`   runs `ip` / `iptables` as asyncio subprocesses (the loop never blocks); a failure is a
              `NetworkCommandError` naming the command and what it printed.
- `names`     interface and namespace names: the lab prefix `mp-` plus a short id, at most 15
              characters for an interface.
- `ranges`    the lab's address ranges per cluster (pods, Services, LoadBalancers), validated:
              IPv4, no overlap with each other or with any route already on the host, and, once the
              bridge exists, routed out of the lab's bridge (`ip route get`).
- `ledger`    every namespace, link, bridge, folder, file and iptables chain/rule is recorded in a
              file BEFORE it is made (append + fsync); `cleanup` removes them by name in reverse
              order, tolerating ones already gone, so clean-up works after a crash.
- `links`     the bridge (host-side gateway addresses, host routes for the lab's ranges), a pod's
              named namespace, its veth (`eth0` with the pod IP, `lo` up) and routes for the lab's
              ranges only (no default route, no masquerade: nothing can leave the machine).
- `resolver`  `/etc/netns/NAME/hosts` and `resolv.conf` (the pod's search domains), which
              `ip netns exec NAME` mounts over `/etc`.
- `firewall`  the host's iptables for the lab: the forwarding guard (nothing forwarded off the lab's
              bridges), the reject chain for Service addresses without endpoints, and one nat
              chain per cluster for kube-proxy's DNAT rules (`lab/node/servicenat.py` fills it).
- `plan`      the lab's network plan (id, per cluster its ranges and bridge), `network.json`.
- `bringup`   the whole network up (ranges checked, bridges, chains) and down (every ledger).

plan → bringup → ranges → links / firewall (+ resolver) → command; every maker records in the
ledger first.
"""
