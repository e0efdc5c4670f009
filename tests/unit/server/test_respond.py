from meshplane.model.ids import Hostname
from meshplane.push import context
from meshplane.server import respond
from tests.support import memsource

A = Hostname("svc-1.ns-1.svc.cluster.local")


def ctx() -> context.PushContext:
    src = memsource.MemorySource()
    memsource.populate(src, 50, 1)
    src.add_service("svc-1", "ns-1", (("http", 80), ("grpc", 9090)))
    return src.snapshot("v1")


def test_affected_clusters_from_service_ports_and_both_name_forms() -> None:
    names = {f"outbound|80||svc-{i}.ns-{i % 10}.svc.cluster.local" for i in range(50)}
    names |= {"outbound|9090||" + A, "outbound_.80_._." + A, "outbound|8080||" + A}
    got = respond.affected_clusters(names, frozenset({A}), ctx())
    assert got == {"outbound|80||" + A, "outbound|9090||" + A, "outbound_.80_._." + A}


def test_affected_clusters_of_a_host_gone_from_the_snapshot_and_of_few_names() -> None:
    gone = Hostname("gone.ns.svc.cluster.local")
    names = {f"outbound|80||svc-{i}.ns-{i % 10}.svc.cluster.local" for i in range(50)} | {
        "outbound|81||" + gone
    }
    assert respond.affected_clusters(names, frozenset({gone}), ctx()) == {"outbound|81||" + gone}
    few = {"outbound|8080||" + A, "inbound|80||"}
    assert respond.affected_clusters(few, frozenset({A}), ctx()) == {"outbound|8080||" + A}
