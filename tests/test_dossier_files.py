"""A dossier's files on the whole platform (real Kafka, PostgreSQL, Keycloak and the stack's S3
server): uploaded once, bound by hash at receipt, opened at the district by the official the
dossier was forwarded to and by nobody off its route, every opening on the timeline; a scanned
result kept for the citizen and reused by them, and by nobody else."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import unquote

import httpx

from ops.clients import upload_component_files
from tests.helpers import COMMUNE, IDENTITIES, Agencies, eventually, pay_fee_if_asked, platform_http, submission
from tests.unit.test_file_store import PDF, png

LAND = "1.004227"  # commune -> district (appraises, signs) -> commune
OTHER_COMMUNE = "000.22.12.H40"  # xã Trường Yên: not on the route
NAME = "Sơ đồ thửa đất — bản chụp.pdf"


async def upload(http, intake: str, data: bytes, auth=httpx.USE_CLIENT_DEFAULT) -> dict:
    r = await http.post(f"{intake}/v1/files", content=data, headers={"content-type": "application/pdf"}, auth=auth)
    assert r.status_code == 201, r.text
    return r.json()


def applicant(n: int) -> dict:
    return {
        "full_name": "Phạm Thị Thu Hằng",
        "id_number": f"0371900{n:05d}",
        "phone": "0987654321",
        "address": "Xóm Trại, xã Ninh Hải, huyện Hoa Lư, Ninh Bình",
    }


async def test_the_district_opens_what_the_citizen_uploaded_and_nobody_off_the_route_does(platform):
    intake, routing = platform["intake"].url, platform["routing"].url
    async with platform_http() as http:
        stored = await upload(http, intake, PDF)
        assert stored == {"sha256": hashlib.sha256(PDF).hexdigest(), "size": len(PDF), "media_type": "application/pdf"}
        body = submission(LAND, applicant=applicant(1))
        body["documents"][2] = {"component": "TP3", "name": NAME, "sha256": stored["sha256"]}
        d = await pay_fee_if_asked(
            http, intake, platform["payment"].url, (await http.post(f"{intake}/v1/dossiers", json=body)).json()
        )
        code = d["code"]
        agencies = Agencies(http, routing)
        await eventually(lambda: agencies.dossier(code), what="routing")
        await agencies.step_through_one(code)  # the commune accepts and forwards to the district
        district = await agencies.holder(code)
        assert district != COMMUNE

        official = IDENTITIES.official(district)
        listed = (await http.get(f"{routing}/v1/dossiers/{code}/files", auth=official)).json()
        assert {f["component"]: f["sha256"] for f in listed}["TP3"] == stored["sha256"]
        ours = next(f for f in listed if f["component"] == "TP3")
        r = await http.get(f"{routing}{ours['url']}", auth=official)
        assert r.status_code == 200 and r.content == PDF
        assert r.headers["content-type"] == "application/pdf"
        assert unquote(r.headers["content-disposition"].split("filename*=UTF-8''")[1]) == NAME

        # an agency off the route, and another portal, are answered as if there were no such dossier
        off = await http.get(f"{routing}{ours['url']}", auth=IDENTITIES.official(OTHER_COMMUNE))
        assert off.status_code == 404, off.text
        other_portal = await http.get(
            f"{intake}/v1/dossiers/{code}/files/{stored['sha256']}", auth=IDENTITIES.client("national-portal")
        )
        assert other_portal.status_code == 404
        own_portal = await http.get(f"{intake}/v1/dossiers/{code}/files/{stored['sha256']}")
        assert own_portal.status_code == 200 and own_portal.content == PDF
        # a hash that is not this dossier's file, though it is in the store
        stranger = await upload(http, intake, png())
        r = await http.get(f"{routing}/v1/dossiers/{code}/files/{stranger['sha256']}", auth=official)
        assert r.status_code == 404

        async def openings():
            rows = await agencies.timeline(code)
            opened = [t for t in rows if t["event_type"] == "vn.lgsp.dossier.file_opened.v1"]
            return opened if len(opened) >= 2 else None

        seen = await eventually(openings, what="the openings on the timeline")
        assert len(seen) == 2  # the district's official and the submitting portal; nobody else
        assert {t["source"] for t in seen} == {"/lgsp/routing", "/lgsp/intake"}
        district_line = next(t for t in seen if t["agency_code"] == district)
        assert NAME in district_line["summary"]


async def test_uploads_are_judged_by_their_bytes_and_size_and_bound_only_by_who_uploaded_them(platform):
    intake = platform["intake"].url
    async with platform_http() as http:
        exe = await http.post(
            f"{intake}/v1/files",
            content=b"MZ\x90\x00 a program named scan.pdf",
            headers={"content-type": "application/pdf"},
        )
        assert exe.status_code == 415 and "x-msdownload" in exe.json()["title"]
        big = await http.post(
            f"{intake}/v1/files", content=b"%PDF-1.7\n" + b"0" * 3_000_001, headers={"content-type": "application/pdf"}
        )
        assert big.status_code == 413
        # the national portal uploaded this file; the driver's portal only knows its hash
        theirs = await upload(http, intake, PDF + b"%national", auth=IDENTITIES.client("national-portal"))
        body = submission("1.001193", applicant=applicant(2))
        body["documents"][0] = {"component": "TP1", "name": "Tờ khai.pdf", "sha256": theirs["sha256"]}
        r = await http.post(f"{intake}/v1/dossiers", json=body)
        assert r.status_code == 422 and [x["code"] for x in r.json()["reasons"]] == ["file_not_uploaded"], r.text
        body["documents"][0].pop("sha256")
        r = await http.post(f"{intake}/v1/dossiers", json=body)
        assert r.status_code == 422 and [x["code"] for x in r.json()["reasons"]] == ["file_required"], r.text


async def test_a_scanned_result_is_kept_for_the_citizen_and_reused_by_them_only(platform):
    intake, routing = platform["intake"].url, platform["routing"].url
    async with platform_http() as http:
        await upload_component_files(http, intake)
        agencies = Agencies(http, routing)
        first = (await http.post(f"{intake}/v1/dossiers", json=submission(LAND, applicant=applicant(3)))).json()
        await pay_fee_if_asked(http, intake, platform["payment"].url, first)
        await eventually(lambda: agencies.dossier(first["code"]), what="routing")
        await agencies.step_through(first["code"])  # the district scans its paper result and resolves with it

        async def result():
            rows = (await http.get(f"{intake}/v1/dossiers/{first['code']}/files")).json()
            return next((f for f in rows if f["role"] == "result"), None)

        kept = await eventually(result, what="the result kept with the dossier")
        r = await http.get(f"{intake}{kept['url']}")
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == kept["sha256"]

        async def portal_told():  # the national portal's update points to the result file
            held = (await http.get(f"{platform['portal'].url}/control/updates")).json().get(first["code"], [])
            return next((u["DanhSachGiayToKetQua"] for u in held if "DanhSachGiayToKetQua" in u), None)

        [told] = await eventually(portal_told, what="the portal told of the result file")
        assert (told["DuongDanTepTinKetQua"], told["MaBamTepTin"]) == (kept["url"], kept["sha256"])

        def reusing(n: int) -> dict:
            body = submission("1.009994", applicant=applicant(n))
            body["documents"][2] = {"component": "TP3", "name": "GCN đã số hóa", "reused_from": first["code"]}
            return body

        second = await http.post(f"{intake}/v1/dossiers", json=reusing(3))
        assert second.status_code == 201, second.text
        files = (await http.get(f"{intake}/v1/dossiers/{second.json()['code']}/files")).json()
        [reused] = [f for f in files if f["reused_from"]]
        assert (reused["sha256"], reused["reused_from"], reused["component"]) == (kept["sha256"], first["code"], "TP3")
        # someone else cannot pass another citizen's result off as theirs
        stranger = await http.post(f"{intake}/v1/dossiers", json=reusing(4))
        assert stranger.status_code == 422
        assert [x["code"] for x in stranger.json()["reasons"]] == ["reuse_not_found"]


async def test_the_report_counts_digitisation(platform, clock):
    """Group 3 figures of the receiving commune move with a digitised dossier (exact figures of
    a known set: services/intake/tests/test_report.py)."""
    intake = platform["intake"].url
    now = clock.now()
    period = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}

    async def commune_row(http) -> dict:
        r = (await http.get(f"{intake}/v1/reports", params=period)).json()
        assert "agencies" in r, r
        return next((a for a in r["agencies"] if a["agency_code"] == COMMUNE), {"components_digitised": 0})

    async with platform_http() as http:
        before = (await commune_row(http))["components_digitised"]
        r = await http.post(f"{intake}/v1/dossiers", json=submission("1.001193", applicant=applicant(5)))
        assert r.status_code == 201
        paper = await http.post(
            f"{intake}/v1/dossiers", json=submission("1.001193", channel="counter", applicant=applicant(6))
        )
        assert paper.status_code == 201
        after = await commune_row(http)
        assert after["components_digitised"] == before + 1  # the online one; the paper one is not digitised
