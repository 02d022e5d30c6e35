"""The report on the running platform: intake follows each dossier's steps from routing's events,
so a district's delay on a dossier received at a commune is charged to the district; and each
caller sees the report of their own area (a district's manager the district, an official their
agency), over HTTP with real tokens."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
from openpyxl import load_workbook

from tests.helpers import COMMUNE, IDENTITIES, eventually, submission

DISTRICT = "000.00.12.H40"  # huyện Hoa Lư, above the commune
OTHER_DISTRICT = "000.00.13.H40"


async def test_a_districts_delay_is_charged_to_the_district_and_each_sees_their_area(platform, clock):
    intake = platform["intake"].url
    async with httpx.AsyncClient(timeout=15) as http:
        # land use (1.003596): received at the commune, handled and decided at the district, 15
        # working days; entered after an outage 29 days ago, so the district's step is long overdue
        body = submission("1.003596", channel="counter", received_at=(clock.now() - timedelta(days=29)).isoformat())
        r = await http.post(f"{intake}/v1/dossiers", json=body, auth=IDENTITIES.counter(COMMUNE))
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        period = {
            "from": (clock.now() - timedelta(days=30)).isoformat(),
            "to": (clock.now() + timedelta(days=1)).isoformat(),
            "late_limit": 500,
        }
        manager = IDENTITIES.person("manager-district")

        async def charged():
            r = await http.get(f"{intake}/v1/reports", params=period, auth=manager)
            assert r.status_code == 200, r.text
            entry = next((d for d in r.json()["late"] if d["code"] == code), None)
            return (r.json(), entry) if entry and entry["charged_to"][0]["step_index"] is not None else None

        report, entry = await eventually(charged, timeout=60, what="the dossier's overrun step in the report")
        assert report["area"] == DISTRICT  # a district's manager: the district's report by default
        assert entry["state"] == "overdue" and entry["handling_agency"] != COMMUNE
        assert {c["agency_code"] for c in entry["charged_to"]}.isdisjoint({COMMUNE})
        assert entry["charged_to"][0]["step_index"] == 0 and entry["charged_to"][0]["late_minutes"] > 0
        rows = {a["agency_code"]: a for a in report["agencies"]}
        assert rows[entry["charged_to"][0]["agency_code"]]["held_late"] >= 1
        # every row of the district's report is the district's or below it
        names = {a["agency_code"] for a in report["agencies"]}
        assert names and all(a.startswith("000.") and a.endswith(".12.H40") for a in names), names

        # the district's manager may not read another district; the province's manager may
        other = {**period, "area": OTHER_DISTRICT}
        refused = await http.get(f"{intake}/v1/reports", params=other, auth=manager)
        assert refused.status_code == 403, refused.text
        province = await http.get(f"{intake}/v1/reports", params=other, auth=IDENTITIES.person("manager-province"))
        assert province.status_code == 200 and province.json()["area"] == OTHER_DISTRICT
        # the commune's official sees the commune's row only; the dossier cost the commune nothing
        own = await http.get(f"{intake}/v1/reports", params=period, auth=IDENTITIES.official(COMMUNE))
        assert own.status_code == 200, own.text
        assert [a["agency_code"] for a in own.json()["agencies"]] == [COMMUNE]
        assert code not in [d["code"] for d in own.json()["late"]]


async def test_the_export_is_the_callers_area_and_the_catalogue_is_public(platform, clock):
    intake = platform["intake"].url
    period = {
        "from": (clock.now() - timedelta(days=30)).isoformat(),
        "to": (clock.now() + timedelta(days=1)).isoformat(),
    }
    async with httpx.AsyncClient(timeout=30) as http:
        manager = IDENTITIES.person("manager-district")
        shown = (await http.get(f"{intake}/v1/reports", params=period, auth=manager)).json()
        r = await http.get(f"{intake}/v1/reports/export", params={**period, "format": "xlsx"}, auth=manager)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert r.headers["content-disposition"].startswith('attachment; filename="bao-cao-')
        sheet = load_workbook(io.BytesIO(r.content))["Theo cơ quan"]
        rows = list(sheet.iter_rows(min_row=2, values_only=True))
        codes = {row[0] for row in rows[1:] if row[0]}
        # the export is what the district's manager sees: their area, the same figures
        assert codes == {a["agency_code"] for a in shown["agencies"]}
        total = dict(zip(rows[0], next(row for row in rows if row[1] == "Tổng cộng")))
        assert total["Tiếp nhận trong kỳ"] == shown["total"]["received"]
        refused = await http.get(
            f"{intake}/v1/reports/export", params={**period, "area": OTHER_DISTRICT, "format": "csv"}, auth=manager
        )
        assert refused.status_code == 403
        assert (await http.get(f"{intake}/v1/reports/export", params=period)).status_code == 401  # no token

        # the published catalogue needs no token; a withdrawn procedure is not in it
        catalogue = await http.get(f"{intake}/v1/public/procedures")
        assert catalogue.status_code == 200, catalogue.text
        listed = {p["code"]: p for p in catalogue.json()["procedures"]}
        assert "1.001193" in listed and "1.000001" not in listed
        assert listed["1.001193"]["name"] == "Đăng ký khai sinh" and listed["1.001193"]["online"] == "full"
        assert sum(catalogue.json()["offered_online"].values()) == len(listed)
        # the fee schedule, line by line: the fee (lệ phí) and the charge (phí) apart, and the total
        business = listed["1.001612"]
        assert [(f["kind"], f["amount_vnd"]) for f in business["fees"]] == [("le_phi", 50_000), ("phi", 100_000)]
        assert business["fee_vnd"] == 150_000
        assert listed["1.001193"]["fees"] == [] and listed["1.001193"]["fee_vnd"] == 0  # free
        earlier = await http.get(f"{intake}/v1/public/procedures", params={"on": "2024-05-01"})
        assert "1.000001" in {p["code"] for p in earlier.json()["procedures"]}  # in force then
