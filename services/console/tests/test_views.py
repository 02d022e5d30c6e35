"""What the console's pages compute, on known inputs and a fixed "now"."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.console import views
from services.console.signin import safe_next
from shared.reference import load_reference
from shared.scorecard import percent

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = load_reference("three_level").calendar
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=VN)  # a Tuesday


def counts(**kw) -> dict:
    base = dict.fromkeys(
        (
            "received",
            "carried_over",
            "resolved_early",
            "resolved_on_time",
            "resolved_late",
            "in_progress_on_time",
            "in_progress_due_soon",
            "in_progress_overdue",
            "online",
            "bcci",
            "components_digitised",
            "reused",
            "approved",
            "results_digitised",
            "apologies_owed",
            "apologies_sent",
        ),
        0,
    )
    return {**base, **kw}


def test_on_time_rate_is_indicator_2_1_and_shares_are_of_received():
    f = views.figures(
        counts(
            received=10,
            resolved_early=2,
            resolved_on_time=3,
            resolved_late=1,
            in_progress_on_time=3,
            in_progress_overdue=1,
            online=4,
            bcci=1,
        )
    )
    assert f["on_time_rate"] == 80.0  # (2 + 3 + 3) / 10 handled
    assert (f["online_share"], f["bcci_share"]) == (40.0, 10.0)
    assert (f["resolved"], f["in_progress"]) == (6, 4)
    assert views.figures(counts())["on_time_rate"] is None  # nothing handled: no rate, not 0%


def test_an_agencys_lists_put_the_most_late_first_and_the_least_time_left_first():
    rows = [
        {"code": "A", "status": "processing", "step_due_at": (NOW - timedelta(hours=2)).isoformat()},
        {"code": "B", "status": "processing", "step_due_at": (NOW - timedelta(days=3)).isoformat()},
        {"code": "C", "status": "processing", "step_due_at": (NOW + timedelta(hours=6)).isoformat()},
        {"code": "D", "status": "processing", "step_due_at": (NOW + timedelta(hours=1)).isoformat()},
        {"code": "E", "status": "processing", "step_due_at": (NOW + timedelta(days=6)).isoformat()},  # not at risk
        {"code": "F", "status": "processing", "step_due_at": None, "due_at": (NOW - timedelta(hours=1)).isoformat()},
    ]
    lists = views.work_list(rows, NOW, CAL)
    assert [r["code"] for r in lists["overdue"]] == ["B", "A", "F"]
    assert [r["code"] for r in lists["at_risk"]] == ["D", "C"]
    assert lists["overdue"][0]["late_vi"] == "3 ngày"
    assert lists["at_risk"][0]["left_vi"] == "1 giờ"
    assert lists["overdue"][0]["status_vi"] == "Đang xử lý"


def test_at_risk_counts_working_time_over_a_weekend():
    friday_afternoon = datetime(2026, 11, 27, 16, 0, tzinfo=VN)
    monday_morning = datetime(2026, 11, 30, 9, 0, tzinfo=VN)  # 3 days away, 1.5 working hours
    lists = views.work_list(
        [{"code": "W", "status": "processing", "step_due_at": monday_morning}], friday_afternoon, CAL
    )
    assert [r["code"] for r in lists["at_risk"]] == ["W"]


def test_the_waterfall_places_spans_by_start_and_length_and_nests_children():
    ms = 1_000_000
    spans = [
        {
            "span_id": "a",
            "parent_id": None,
            "service": "intake",
            "name": "POST /v1/dossiers",
            "start": 0,
            "end": 100 * ms,
            "status": "OK",
        },
        {
            "span_id": "b",
            "parent_id": "a",
            "service": "intake",
            "name": "outbox",
            "start": 10 * ms,
            "end": 20 * ms,
            "status": "OK",
        },
        {
            "span_id": "c",
            "parent_id": "b",
            "service": "routing",
            "name": "consume",
            "start": 50 * ms,
            "end": 200 * ms,
            "status": "ERROR",
        },
    ]
    w = views.waterfall(list(reversed(spans)))
    assert w["total_ms"] == 200.0
    assert [(r["name"], r["depth"], r["left"], r["width"]) for r in w["rows"]] == [
        ("POST /v1/dossiers", 0, 0.0, 50.0),
        ("outbox", 1, 5.0, 5.0),
        ("consume", 2, 25.0, 75.0),
    ]
    assert [r["error"] for r in w["rows"]] == [False, False, True]
    assert views.waterfall([]) == {"rows": [], "total_ms": 0}


def test_the_trend_chart_scales_to_the_busiest_day():
    trend = [
        {"day": date(2026, 11, 23), "received": 4, "resolved_in_time": 1, "resolved_late": 1},
        {"day": date(2026, 11, 24), "received": 2, "resolved_in_time": 0, "resolved_late": 0},
    ]
    chart = views.trend_chart(trend, width=200, height=120)
    first, second = chart["days"]
    assert (first["recv_h"], second["recv_h"]) == (100.0, 50.0)  # height minus the label band
    assert (first["resolved_h"], first["late_h"]) == (50.0, 25.0)
    assert (first["label"], second["x"]) == ("23/11", 100.0)


def test_times_and_durations_read_in_vietnamese():
    assert views.local("2026-11-24T03:00:00+00:00") == "24/11/2026 10:00"
    assert views.duration_vi(timedelta(days=2, hours=3, minutes=10)) == "2 ngày 3 giờ"
    assert views.duration_vi(timedelta(minutes=45)) == "45 phút"
    assert percent(83.25) == "83,2%" and percent(None) == "—"
    assert views.status_vi("supplement_requested") == "Chờ bổ sung"


def test_after_signing_in_only_a_path_on_this_console_is_followed():
    assert safe_next("/dossiers/X?y=1") == "/dossiers/X?y=1"
    for outside in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)", None, "/" + "a" * 600):
        assert safe_next(outside) == "/"


async def test_every_page_forbids_framing_and_foreign_scripts():
    """The console answered without any security header: another site could frame the
    re-drive page, and nothing limited where scripts came from."""
    import os

    import httpx

    os.environ.setdefault("LGSP_PROFILE", "local")
    from services.console.app import create_app

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://console") as http:
        for path in ("/health", "/no-such-page"):
            r = await http.get(path)
            policy = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, policy
            assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"


def test_a_late_dossier_names_whose_step_overran_in_words():
    late = [
        {
            "code": "X",
            "agency_code": "000.21.12.H40",
            "handling_agency": "000.00.12.H40",
            "state": "resolved_late",
            "late_minutes": 3 * 24 * 60 + 120,
            "charged_to": [
                {"agency_code": "000.00.12.H40", "step_index": 1, "step_name": "Thẩm định", "late_minutes": 90},
                {"agency_code": "000.99.99.H40", "step_index": None, "step_name": None, "late_minutes": None},
            ],
        }
    ]
    [row] = views.late_rows(late, {"000.00.12.H40": "Ủy ban nhân dân huyện Hoa Lư"})
    assert row["handling_name"] == "Ủy ban nhân dân huyện Hoa Lư"
    assert (row["state_vi"], row["late_vi"]) == ("đã giải quyết, trễ hạn", "3 ngày 2 giờ")
    assert row["charged"] == ["Ủy ban nhân dân huyện Hoa Lư (bước 2: Thẩm định, trễ 1 giờ)", "000.99.99.H40"]
