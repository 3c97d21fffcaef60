"""The scale model's promises (bench/quota.py, `make bench` section g): what the target scale
costs each AWS quota before and after the edge answers waiting visitors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import quota
from bench.quota import Model, Opening, Scale


@pytest.fixture(scope="module")
def model() -> Model:
    return quota.build()


@pytest.fixture(scope="module")
def shielded_opening() -> Opening:
    return quota.opening(replace(Scale(), origin_shield=True), before=False)


def test_the_queue_sum_counts_each_visitor_once_per_interval() -> None:
    every_10_s = quota.looks_per_second(50_000, 1_000.0, lambda position, eta: 10)
    assert every_10_s == pytest.approx(5_000)


def test_before_every_poll_reaches_api_gateway_far_past_its_quota(model: Model) -> None:
    before_steady, _ = model.steady
    before_burst, _ = model.burst
    # the figures: 70,000-112,000 req/s with a million waiting, ~500,000/s just
    # before a million-visitor opening
    assert 70_000 <= before_steady.api <= 112_000
    assert before_burst.api > quota.API_GATEWAY_RPS
    assert 400_000 <= model.opening[0].mean(-20, 0) <= 600_000
    assert before_steady.concurrency > quota.LAMBDA_CONCURRENCY


def test_after_the_api_load_of_a_waiting_queue_does_not_grow_with_it(model: Model) -> None:
    _, million = model.steady
    _, hundred_thousand = model.steady_small
    assert million.api == pytest.approx(hundred_thousand.api, rel=0.01)
    assert million.api <= quota.API_GATEWAY_RPS
    before_million, before_tenth = model.steady[0], model.steady_small[0]
    assert before_million.api > 2 * before_tenth.api


def test_after_waiting_visitors_cost_the_api_only_edge_misses(model: Model) -> None:
    _, after = model.steady
    per_visitor_minute = (after.state_misses + after.slot_misses) * 60 / Scale().waiting
    assert per_visitor_minute <= 0.01


def test_a_ten_minute_wait_costs_about_twenty_looks(model: Model) -> None:
    before, after = model.looks_10_min
    assert 15 <= after <= 25
    assert before > 2 * after


def test_the_burst_after_fits_cloudfront_and_no_key_runs_hot(model: Model) -> None:
    _, after = model.burst
    assert after.edge < quota.CLOUDFRONT_RPS
    assert after.counter_key_wcu <= quota.DDB_KEY_WCU
    assert after.state_key_rcu <= quota.DDB_KEY_RCU
    assert after.ledger_key_wcu <= quota.DDB_KEY_WCU
    assert after.table_wcu <= quota.DDB_TABLE_MAX
    before, _ = model.burst
    assert before.state_key_rcu > quota.DDB_KEY_RCU  # every container reading STATE each second


def test_after_the_opening_stays_under_cloudfront_quota(model: Model) -> None:
    assert model.opening[1].load.edge < quota.CLOUDFRONT_RPS


def test_an_opening_spread_at_50000_a_second_fits_cloudfront() -> None:
    opening = quota.opening(replace(Scale(), spread_per_second=50_000), before=False)
    assert opening.load.edge < 0.8 * quota.CLOUDFRONT_RPS


def test_the_opening_reaches_the_back_end_only_for_the_state_and_pickups(
    model: Model, shielded_opening: Opening
) -> None:
    # the pre-queue's slot documents were read as each slot settled, long before the opening
    unshielded = model.opening[1].load
    assert unshielded.slot_misses == 0
    assert unshielded.api <= quota.API_GATEWAY_RPS
    assert unshielded.slots_key_rcu <= quota.DDB_KEY_RCU
    assert unshielded.concurrency <= quota.LAMBDA_CONCURRENCY
    assert shielded_opening.load.api <= unshielded.api


def test_the_edge_design_costs_less_per_million_visitors(model: Model) -> None:
    (before, _), (after, per_after) = model.cost
    assert sum(after.dollars().values()) < sum(before.dollars().values())
    # the back end sees a visitor at its join, its pickup and its complete, and little else
    assert after.api_requests / 1_000_000 <= 3.05
    assert sum(per_after.values()) < 40
