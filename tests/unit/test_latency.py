from tawasol.adapters.api.latency import LatencyRing


def test_percentiles_by_nearest_rank_over_the_last_samples_only() -> None:
    ring = LatencyRing(capacity=100)
    for value in range(1, 201):  # 1..200 µs; only 101..200 stay
        ring.record(value * 1000)
    summary = ring.summary()
    assert summary["decisions"] == 200 and summary["window"] == 100
    assert summary["p50_us"] == 150.0  # 50th of 101..200
    assert summary["p99_us"] == 199.0  # 99th of 101..200
    assert summary["max_us"] == 200.0


def test_empty_ring_reports_no_figures() -> None:
    assert LatencyRing().summary()["p50_us"] is None
