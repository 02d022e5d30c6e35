"""The bench's own arithmetic and outputs, without running a bench: CPU per dossier from
/proc, and the sweep's plot."""

from __future__ import annotations

import os
import time

from ops.bench import CLOCK_TICK_MS, _cpu_ticks, cpu_ms_per_dossier, plot_sweep


def test_cpu_ticks_grow_with_work_and_split_per_process():
    before = _cpu_ticks(os.getpid())
    t = time.process_time()
    while time.process_time() - t < 0.3:  # burn some CPU
        sum(i * i for i in range(1000))
    assert _cpu_ticks(os.getpid()) > before
    assert _cpu_ticks(2**22 + 12345) == 0  # a process that is gone uses nothing
    per = cpu_ms_per_dossier({"intake": 100, "kafka": 50}, {"intake": 300, "kafka": 60, "postgres": 40}, dossiers=10)
    assert per["intake"] == 200 * CLOCK_TICK_MS / 10 and per["kafka"] == 10 * CLOCK_TICK_MS / 10
    assert per["total"] == (200 + 10 + 40) * CLOCK_TICK_MS / 10
    assert list(per)[1:] == ["intake", "postgres", "kafka"]  # biggest first


def test_the_sweep_plot_is_written(tmp_path):
    sweep = [
        {
            "offered_per_s": r,
            "accepted_per_s": min(r, 40),
            "shed": 0,
            "receipt_ms": {"p50": 50 * r, "p99": 90 * r},
            "terminal_ms": {},
        }
        for r in (10, 30, 60)
    ]
    path = plot_sweep(sweep, tmp_path / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
