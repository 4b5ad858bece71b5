"""Batch sizes in the strategy statistics and on /metrics: count, claims, the largest."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lastseat.api.metrics import Metrics
from lastseat.service.statistics import StrategyStatistics


def batched(*sizes: int) -> StrategyStatistics:
    stats = StrategyStatistics()
    for size in sizes:
        stats.add_batch(size)
    return stats


def test_batches_count_their_claims_and_the_largest() -> None:
    stats = batched(3, 7, 2)
    assert (stats.batches, stats.batched_claims, stats.max_batch) == (3, 12, 7)
    assert stats.mean_batch == 4.0
    assert StrategyStatistics().mean_batch == 0.0


def test_merged_processes_add_batches_and_keep_the_largest_batch() -> None:
    total = StrategyStatistics.merged([batched(3, 7).as_dict(), batched(5).as_dict()])
    assert (total.batches, total.batched_claims, total.max_batch) == (3, 15, 7)


def test_metrics_export_batches_claims_and_the_largest_batch() -> None:
    metrics = Metrics("batched")
    stats = batched(4, 6)
    metrics.sync_strategy(stats)
    stats.add_batch(2)
    metrics.sync_strategy(stats)
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.labels.get("strategy") == "batched"
    }
    assert samples["lastseat_strategy_batches_total"] == 3
    assert samples["lastseat_strategy_batched_claims_total"] == 12
    assert samples["lastseat_strategy_max_batch"] == 6
