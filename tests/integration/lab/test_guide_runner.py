"""The guide runner: commands printed before they run, exports carried like one shell session,
polling waits, per-step timing, and a stop at the first failure."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from meshplane.lab import guide, verify


async def test_steps_print_run_carry_exports_and_stop_at_failure(tmp_path: Path) -> None:
    said: list[str] = []
    out: list[str] = []
    (tmp_path / "ready").write_text("")
    steps = (
        guide.Step("write", (guide.heredoc("cluster.yaml", "name: ${NAME}\n"),)),
        guide.Step("export", ("export ADDRESS=$(echo 127.0.3.1)",)),
        guide.Step("use", ('echo "address is ${ADDRESS}"', "cat cluster.yaml")),
        guide.Step("wait", ("echo waited",), wait_for="cat ready; echo ok > ready", timeout=10),
        guide.Step("fail", ("false", "echo never")),
        guide.Step("skipped", ("echo never",)),
    )
    results = await guide.run(
        steps, tmp_path, guide.command_env(tmp_path, {"NAME": "c1"}), said.append, out.append
    )
    assert [r.title for r in results] == ["write", "export", "use", "wait", "fail"]
    assert [r.ok for r in results] == [True, True, True, True, False]
    assert (tmp_path / "cluster.yaml").read_text() == "name: c1\n"
    assert out == ["address is 127.0.3.1", "name: c1", "waited"]
    assert '$ echo "address is ${ADDRESS}"' in said and "$ false" in said and "$ echo never" not in said
    assert said[0] == "[1/6] write" and said[-1].startswith("    FAILED in ")
    assert all(r.seconds >= 0 for r in results)


async def test_a_wait_that_never_succeeds_times_out(tmp_path: Path) -> None:
    said: list[str] = []
    steps = (guide.Step("wait", ("echo x",), wait_for="true", timeout=1),)
    (result,) = await guide.run(steps, tmp_path, guide.command_env(tmp_path), said.append, lambda _: None)
    assert not result.ok and result.output == ["timed out after 1s"]


def test_verify_verdict() -> None:
    one = verify.Side("cluster1", "sleep-1", True, Counter({"v1": 12, "v2": 8}))
    two = verify.Side("cluster2", "sleep-2", False, Counter({"v2": 20}), ["curl: (7) refused"])
    ok, lines = verify.verdict([one, two])
    assert not ok
    assert lines == [
        "cluster1: sleep-1 saw v1×12, v2×8",
        "cluster2: sleep-2 (no sidecar: not in the mesh) saw v2×20  <- expected both v1 and v2",
        "cluster2: 1 failed request(s), first: curl: (7) refused",
    ]
    assert verify.tally("Hello version: v2, instance: helloworld-v2-abc\n") == "v2"
    assert verify.tally("upstream connect error") is None
