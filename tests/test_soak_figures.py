"""The soak's arithmetic (ops/soak.py), on made-up samples: growth after the warm-up."""

from ops.soak import GROWTH_LIMIT, growth


def test_growth_is_judged_after_the_warm_up_from_the_first_to_the_last_samples():
    flat = [(t, {"intake": {"rss_kb": 100_000 + (t % 3), "sockets": 12}}) for t in range(0, 600, 30)]
    leak = [(t, {"routing": {"rss_kb": 80_000 + 100 * t, "sockets": 10 + t // 60}}) for t in range(0, 600, 30)]
    # a large first-minutes rise (start-up) is warm-up and does not count
    warming = [(t, {"notify": {"rss_kb": 50_000 if t < 120 else 90_000, "sockets": 8}}) for t in range(0, 600, 30)]
    result = growth([(t, {**a, **b, **c}) for (t, a), (_, b), (_, c) in zip(flat, leak, warming)], warm_up_s=120)
    assert abs(result["intake"]["rss_kb"]) < 0.001 and result["intake"]["sockets"] == 0
    assert result["routing"]["rss_kb"] > GROWTH_LIMIT and result["routing"]["sockets"] > GROWTH_LIMIT
    assert result["notify"] == {"rss_kb": 0.0, "sockets": 0.0, "from_s": 120, "lives": 1}


def test_too_few_samples_say_nothing():
    assert growth([(0, {"postal": {"rss_kb": 1, "sockets": 1}})], warm_up_s=0) == {
        "postal": {"rss_kb": None, "sockets": None}
    }


def test_a_restarted_process_is_judged_from_its_own_start_and_one_busy_sample_moves_nothing():
    # pid 1 runs for 30 minutes and is killed; pid 2 starts small, warms up for the same 2
    # minutes, then stays flat. Judged over the old and new pids together, the restart would
    # look like shrinkage and the new process's warm-up like growth.
    old = [(t, {"intake-2": {"pid": 1, "rss_kb": 95_000, "sockets": 18}}) for t in range(0, 1800, 30)]
    new = [
        (
            t,
            {
                "intake-2": {
                    "pid": 2,
                    "rss_kb": 60_000 if t < 1800 + 120 else 90_000,
                    "sockets": 40 if t == 2400 else 12,
                }
            },
        )
        for t in range(1800, 3600, 30)
    ]
    result = growth(old + new, warm_up_s=120)["intake-2"]
    assert result["lives"] == 2 and result["from_s"] == 120  # the longer of the two judged lives
    assert result["rss_kb"] == 0.0 and result["sockets"] == 0.0
    # killed early, the new life is the longer one: judged from its own warm-up, it is flat
    # (the busy sample is one of 56)
    early = growth(old[:10] + new, warm_up_s=120)["intake-2"]
    assert early["from_s"] == 1920 and early["rss_kb"] == 0.0 and early["sockets"] == 0.0
    # a leak inside the new life is still seen
    leaking = [(t, {"intake-2": {**v["intake-2"], "rss_kb": 90_000 + 20 * (t - 1800)}}) for t, v in new]
    assert growth(old[:10] + leaking, warm_up_s=120)["intake-2"]["rss_kb"] > GROWTH_LIMIT


def test_the_recovery_after_a_fault_is_the_longest_pause_in_acceptances_around_it():
    import random

    from ops.chaos import Driver

    driver = Driver({"intake": "http://127.0.0.1:1"}, "r", random.Random(1))
    # an acceptance every 0.1 s, none from 10.0 s to 13.0 s: the fault struck at 9.95 s and its
    # action (a restart) was over at 12.5 s
    driver.accepted_spans = [(t / 10 - 0.05, t / 10) for t in range(200) if not 100 < t < 130]
    assert abs(driver.recovery_after(9.95, 12.5) - 3.0) < 1e-9
    # a fault another instance carried: acceptances never stopped for long
    assert driver.recovery_after(2.0, 4.0) < 0.11
    assert driver.recovery_after(25.0, 26.0) is None  # nothing accepted after it


def test_sockets_moving_between_two_instances_of_a_service_are_flat_a_leak_is_not():
    from ops.soak import judge, service_sockets_growth

    # a rebalance at minute 30 moves six connections from documents to documents-2
    moved = [
        (
            t,
            {
                "documents": {"pid": 1, "rss_kb": 100_000, "sockets": 20 if t < 1800 else 14},
                "documents-2": {"pid": 2, "rss_kb": 100_000, "sockets": 12 if t < 1800 else 18},
            },
        )
        for t in range(0, 3600, 30)
    ]
    assert service_sockets_growth(moved, warm_up_s=300) == {"documents": 0.0}
    assert judge(moved, warm_up_s=300)["judged"] == []  # each instance alone moved by a quarter or more
    leaking = [(t, {"notify": {"pid": 1, "rss_kb": 90_000, "sockets": 12 + t // 300}}) for t in range(0, 3600, 30)]
    judged = judge(leaking, warm_up_s=300)
    assert judged["service_sockets_growth"]["notify"] > GROWTH_LIMIT and "notify sockets" in judged["judged"][0]
