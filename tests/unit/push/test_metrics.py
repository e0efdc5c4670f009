from meshplane.push import metrics


def test_istio_names_without_total_or_created_and_separate_registries() -> None:
    a, b = metrics.Metrics(), metrics.Metrics()
    a.pushes.labels(type="cds").inc(3)
    a.record_reject("eds", "pod.ns", "INVALID_ARGUMENT")
    a.xds_clients.labels(version="1.24").inc()
    a.push_time.labels(type="cds").observe(0.2)
    a.convergence.observe(0.3)
    text = a.render().decode()
    assert "# TYPE pilot_xds_pushes counter" in text
    assert 'pilot_xds_pushes{type="cds"} 3.0' in text
    assert 'pilot_total_xds_rejects{type="eds"} 1.0' in text
    assert 'pilot_xds_eds_reject{err="INVALID_ARGUMENT",node="pod.ns"} 1.0' in text
    assert 'pilot_xds{version="1.24"} 1.0' in text
    assert "_total{" not in text and "_total " not in text and "_created" not in text
    assert "pilot_xds_push_time_bucket" in text and "pilot_proxy_convergence_time_bucket" in text
    assert 'pilot_xds_pushes{type="cds"} 0.0' in b.render().decode()
