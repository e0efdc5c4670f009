"""lab.podstatus: phase and conditions as kubectl reads them."""

from __future__ import annotations

from meshplane.lab.node import podstatus


def state(**kw: object) -> podstatus.PodState:
    s = podstatus.PodState(
        pod_ip="127.0.1.2", host_ip="127.0.1.1", start_time="T0", sandbox_ready=True, init_done=True
    )
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_running_and_ready() -> None:
    app, proxy = podstatus.ContainerState("app", "img"), podstatus.ContainerState("istio-proxy", "px")
    for c in (app, proxy):
        c.running("T1", 100)
    app.ready = True
    s = state(containers=[app, proxy])
    out = podstatus.build(s, "T2", {})
    conds = {c["type"]: c for c in out["conditions"]}
    assert out["phase"] == "Running" and conds["Ready"]["status"] == "False"
    assert conds["Ready"]["message"] == "containers with unready status: [istio-proxy]"
    proxy.ready = True
    later = podstatus.build(s, "T3", out)
    conds = {c["type"]: c for c in later["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["lastTransitionTime"] == "T3"
    assert conds["PodScheduled"]["lastTransitionTime"] == "T2"
    assert (
        later["podIPs"] == [{"ip": "127.0.1.2"}]
        and later["containerStatuses"][0]["containerID"] == "lab://100"
    )
    s.terminating = True
    conds = {c["type"]: c for c in podstatus.build(s, "T4", later)["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["message"] == "the pod is terminating"


def test_phases() -> None:
    c = podstatus.ContainerState("job", "img")
    assert podstatus.phase(state(containers=[c])) == "Pending"  # never started
    assert podstatus.phase(state(containers=[c], init_done=False)) == "Pending"
    c.running("T1", 1)
    c.terminated(0, "T2")
    assert podstatus.phase(state(containers=[c], restart_policy="Never")) == "Succeeded"
    assert podstatus.phase(state(containers=[c], restart_policy="Always")) == "Running"
    c.terminated(1, "T3")
    assert podstatus.phase(state(containers=[c], restart_policy="Never")) == "Failed"
    assert podstatus.phase(state(containers=[c], restart_policy="OnFailure")) == "Running"
    assert podstatus.phase(state(containers=[c], init_failed=True)) == "Failed"


def test_unsupported_probe_is_named_in_the_ready_condition() -> None:
    c = podstatus.ContainerState("app", "img")
    c.running("T1", 1)
    c.not_ready_message = "readinessProbe of container app uses exec, which the lab does not run"
    conds = {x["type"]: x for x in podstatus.build(state(containers=[c]), "T2", {})["conditions"]}
    assert "uses exec" in conds["Ready"]["message"]
