"""runtime: process plumbing every layer may use; knows nothing about meshes.

- tasks.py      guarded tasks (a death is logged) and TaskGroup, stopped last-started-first
- clock.py      an injectable clock (monotonic and wall) for debounce, leases, rotation
- backoff.py    capped exponential backoff with jitter for reconnect loops
- durations.py  Go-style durations ("100ms", "1h30m") as Istio's flags and env take them
- rfc3339.py    RFC 3339 times as Kubernetes writes them (metav1.Time), formatted and parsed
- jsonobj.py    `Obj` (a decoded JSON object) and shape-checking readers (as_obj, as_list)
- processes.py  stop a child process: SIGTERM, a grace, then SIGKILL (by handle or by PID)
- signals.py    serve until SIGTERM/SIGINT (`StopOnSignal`), handlers removed afterwards
- logging.py    one line per event, `key=value` context, never secrets
- podroot.py    absolute in-pod paths resolved through MESHPLANE_POD_ROOT (lab pods)
- resolve.py    Service-name resolution for processes running as lab pods

Flow: none of its own; long-running loops elsewhere start through tasks, wait with clock and
backoff, and log through logging.
"""
