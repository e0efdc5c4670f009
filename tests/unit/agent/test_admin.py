"""agent.admin: Envoy's admin /stats text."""

from meshplane.agent import admin


def test_parse_stats() -> None:
    text = (
        "cluster_manager.cds.update_success: 3\n"
        "listener_manager.lds.update_success: 0\n"
        "server.state: 0\n"
        "cluster.x.upstream_rq_time: P0(nan,1) P25(nan,2)\n"
        "weird line\n"
    )
    assert admin.parse_stats(text) == {
        "cluster_manager.cds.update_success": 3,
        "listener_manager.lds.update_success": 0,
        "server.state": 0,
    }
