"""The virtual-time simulation: every fault of the production plan is survived, and runs repeat exactly."""

from __future__ import annotations

import dataclasses

import pytest

from qqproto import GatewayConfig, Intents
from qqproto.testing import PLANS, Fault, Plan, PlatformConfig, Report, Simulation, TimedFault

HOUR = 3600.0


def assert_client_kept_its_promises(report: Report) -> None:
    assert report.fatal is None
    assert report.events_lost == 0
    assert report.events_duplicated == 0
    assert report.silent_dead_s == 0
    assert report.events_delivered == report.events_generated - report.events_abandoned_by_platform
    # Each process fetches the URL once; it fetches again only after the cached one failed.
    assert report.gateway_url_fetches <= 1 + report.restarts + report.gateway_cache_invalidations


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_production_plan_loses_nothing_repeats_nothing_and_is_never_deaf(seed: int) -> None:
    report = Simulation(PLANS["production"], seed=seed, days=4).run()
    assert_client_kept_its_promises(report)
    assert report.uptime_ratio > 0.99
    assert report.events_generated > 4000
    assert sum(report.faults_injected.values()) > 50


def test_the_same_seed_gives_the_same_report() -> None:
    first = Simulation(PLANS["production"], seed=7, days=1).run()
    second = Simulation(PLANS["production"], seed=7, days=1).run()
    assert first.to_dict() == second.to_dict()
    assert first.timeline == second.timeline
    other = Simulation(PLANS["production"], seed=8, days=1).run()
    assert other.to_dict() != first.to_dict()


# Each fault the production plan can throw, alone, at a known time, in an otherwise calm day.
SINGLE_FAULTS = [
    (Fault.RECONNECT, 0.0, "reconnect_request"),
    (Fault.INVALIDATE, 0.0, "invalid_session"),
    (Fault.INVALIDATE_RESUMABLE, 0.0, "invalid_session"),
    (Fault.FAIL_RESUMES, 1.0, "close_4009"),
    (Fault.DROP, 0.0, "connection_lost"),
    (Fault.SILENCE, 0.0, "zombie"),
    (Fault.STOP_ACKS, 600.0, "zombie"),
    (Fault.OUTAGE, 600.0, "zombie"),
    (Fault.TOKEN_5XX, 5.0, None),
    (Fault.EXPIRE_TOKENS, 0.0, None),
    (Fault.HOST_STALL, 45.0, None),
    (Fault.BURST, 500.0, None),
    (Fault.CLOSE, 4009.0, "close_4009"),
    (Fault.CLOSE, 4900.0, "close_4900"),
    (Fault.DEPLOY, 20.0, None),
    (Fault.CRASH, 30.0, None),
]


@pytest.mark.parametrize("fault, value, cause", SINGLE_FAULTS, ids=lambda x: getattr(x, "name", str(x)))
def test_each_fault_of_the_plan_is_survived(fault: Fault, value: float, cause: str | None) -> None:
    # FAIL_RESUMES only bites on a resume: an idle 4009 right after it brings one about.
    timed = [TimedFault(6 * HOUR, fault, value)]
    if fault is Fault.FAIL_RESUMES:
        timed.append(TimedFault(6 * HOUR + 1, Fault.CLOSE, 4009.0))
    plan = Plan(name=f"only {fault.value}", description="", platform=PlatformConfig(), timed=tuple(timed))
    report = Simulation(plan, seed=3, days=0.5).run()
    assert_client_kept_its_promises(report)
    assert report.faults_injected.get(fault.value) == 1
    if cause is not None:
        assert report.reconnects_by_reason.get(cause, 0) >= 1, report.reconnects_by_reason
    assert report.timeline[-1].state == "connected"


def test_a_gateway_node_that_is_down_costs_one_rate_limited_refetch_and_keeps_the_cached_url() -> None:
    timed = (TimedFault(HOUR, Fault.FAIL_UPGRADES, 4.0),)
    plan = Plan(
        name="node down", description="", platform=PlatformConfig(gateway_rate_limit=(1, 4 * HOUR)), timed=timed
    )
    sim = Simulation(plan, seed=2, days=0.1)
    report = sim.run()
    assert_client_kept_its_promises(report)
    assert report.gateway_cache_invalidations == 1
    assert report.gateway_url_fetches == 2
    assert sim.platform.counters.gateway_rate_limited == 1
    assert report.reconnects_by_reason.get("rate_limited") == 1
    assert report.timeline[-1].state == "connected"


def test_token_expiry_every_7200s_is_refreshed_ahead_without_a_reconnect() -> None:
    plan = Plan(name="tokens", description="", platform=PlatformConfig(token_ttl=7200))
    report = Simulation(plan, seed=1, days=1).run()
    assert report.token_fetches >= 12
    assert report.reconnects_by_reason == {}
    assert report.identifies == 1


def test_gateway_rate_limit_of_two_a_minute_is_never_hit_by_reconnects() -> None:
    plan = dataclasses.replace(PLANS["production"], name="production")
    sim = Simulation(plan, seed=5, days=2)
    report = sim.run()
    assert sim.platform.counters.gateway_rate_limited == 0
    assert report.gateway_url_fetches <= 1 + report.restarts + report.gateway_cache_invalidations


def test_wrong_secret_ends_in_fatal_at_once() -> None:
    plan = PLANS["calm"]
    config = GatewayConfig(app_id=plan.platform.app_id, client_secret="wrong")
    report = Simulation(plan, seed=1, days=1, client_config=config).run()
    assert report.fatal is not None and "client_secret" in report.fatal


def test_unauthorised_intents_end_in_fatal_4014() -> None:
    plan = Plan(name="intents", description="", platform=PlatformConfig(allowed_intents=int(Intents.GUILDS)))
    config = GatewayConfig(app_id=plan.platform.app_id, client_secret=plan.platform.client_secret)
    report = Simulation(plan, seed=1, days=1, client_config=config).run()
    assert report.fatal is not None and "4014" in report.fatal


def test_unauthorised_intents_in_the_field_form_back_off_instead_of_storming() -> None:
    # The field shows op 9 then close 4903 for unauthorised intents: the client cannot tell it
    # from a passing fault, so it must at least not hammer the platform.
    plan = Plan(
        name="intents",
        description="",
        platform=PlatformConfig(allowed_intents=int(Intents.GUILDS), intents_field_behaviour=True),
    )
    config = GatewayConfig(app_id=plan.platform.app_id, client_secret=plan.platform.client_secret)
    sim = Simulation(plan, seed=1, days=1, client_config=config)
    report = sim.run()
    assert report.fatal is None
    assert sim.platform.counters.identifies < 100  # of the day's 1000 session starts


@pytest.mark.parametrize("seed", [1, 3])
def test_a_day_of_replies_through_outages_expiring_windows_and_rate_limits_loses_none(seed: int) -> None:
    sim = Simulation(PLANS["replies"], seed=seed, days=1)
    report = sim.run()
    assert_client_kept_its_promises(report)
    assert report.replies_requested > 1000
    assert (report.replies_lost, report.replies_duplicated, report.replies_failed) == (0, 0, 0)
    assert report.replies_delivered == report.replies_requested
    assert report.replies_sent_active > 0
    assert report.faults_injected.get("network outage", 0) >= 1
    assert sim.platform.counters.message_refusals.get(22009, 0) > 0


def test_production_deploys_and_crashes_lose_nothing_and_repeat_nothing() -> None:
    report = Simulation(PLANS["production"], seed=1, days=4).run()
    assert_client_kept_its_promises(report)
    assert report.faults_injected["graceful restart (deploy)"] >= 2
    assert report.faults_injected["crash with an event in hand"] >= 1
    assert report.restarts == sum(
        report.faults_injected[k] for k in ("graceful restart (deploy)", "crash with an event in hand")
    )
    assert report.events_redelivered_after_crash == report.faults_injected["crash with an event in hand"]


def restart_plan(fault: Fault, downtime: float) -> Plan:
    """A calm half day with one restart at hour 6, events every 10 s so one is always near."""
    timed = (TimedFault(6 * HOUR, fault, downtime),)
    return Plan(name=fault.value, description="", platform=PlatformConfig(), event_interval=10.0, timed=timed)


def test_a_deploy_resumes_with_every_event_exactly_once() -> None:
    sim = Simulation(restart_plan(Fault.DEPLOY, 60.0), seed=4, days=0.5)
    report = sim.run()
    assert_client_kept_its_promises(report)
    assert (report.restarts, report.identifies, report.resumes) == (1, 1, 1)
    assert report.events_redelivered_after_crash == 0
    assert sim.platform.counters.events_replayed == 0, "a graceful stop had finished all it received"
    assert sim.platform.counters.events_sent > 0 and 1000 not in sim.platform.counters.close_codes_received


def test_a_crash_redelivers_only_the_event_in_hand() -> None:
    sim = Simulation(restart_plan(Fault.CRASH, 30.0), seed=4, days=0.5)
    report = sim.run()
    assert_client_kept_its_promises(report)
    assert (report.restarts, report.identifies, report.resumes) == (1, 1, 1)
    assert report.events_redelivered_after_crash == 1
    assert any(entry.cause == "crash" for entry in report.timeline)


def test_a_restart_after_the_resume_window_identifies_and_counts_what_the_platform_dropped() -> None:
    plan = restart_plan(Fault.DEPLOY, 600.0)  # the fake keeps a detached session for 300 s
    report = Simulation(plan, seed=4, days=0.5).run()
    assert_client_kept_its_promises(report)
    assert (report.restarts, report.identifies) == (1, 2)
    assert report.events_abandoned_by_platform > 0 and report.events_lost == 0


def test_the_logs_a_plot_draws_from_agree_with_the_report() -> None:
    report = Simulation(PLANS["production"], seed=2, days=1).run()
    down = sum(end - start for start, end in report.outages)
    assert down == pytest.approx((1 - report.uptime_ratio) * 86400, rel=1e-6, abs=1e-6)
    assert max(end - start for start, end in report.outages) == pytest.approx(report.longest_outage_s)
    assert all(a[1] <= b[0] for a, b in zip(report.outages, report.outages[1:]))
    assert sorted(name for _, name, _ in report.fault_log) == sorted(
        name for name, count in report.faults_injected.items() for _ in range(count)
    )
    assert sum(report.delivered_per_hour.values()) == report.events_delivered
    assert set(report.delivered_per_hour) <= set(range(25))
    assert not {"outages", "fault_log", "delivered_per_hour", "timeline"} & set(report.to_dict())
