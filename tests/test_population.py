"""The applicant against the national population database, through the data-sharing platform's
simulator (OAuth2 client credentials and Ed25519-signed requests): a matching citizen passes
with the database's fields filled in, a mismatch is refused with the reason, and a database
that does not answer never stops the counter: the dossier is received "to be confirmed",
checked again once it answers, and an official sees it on the timeline when it then fails.
The circuit breaker shows on the operations page."""

from __future__ import annotations

import httpx

from tests.helpers import APPLICANT, eventually, platform_http, submission

CENTRE = "000.00.01.H40"  # the province's public-service centre receives judicial records
JUDICIAL_RECORD = "2.000794"  # connected to the population database in the sample catalogue


def applicant(n: int, **kw) -> dict:
    return {**APPLICANT, "id_number": f"0372{n:08d}", "full_name": "Đinh Thị Ngọc Ánh", **kw}


def citizen(n: int, **kw) -> dict:
    return {
        "id_number": f"0372{n:08d}",
        "full_name": "Đinh Thị Ngọc Ánh",
        "date_of_birth": "1988-02-29",
        "permanent_address": "Thôn Văn Lâm, xã Ninh Hải, huyện Hoa Lư, tỉnh Ninh Bình",
        **kw,
    }


def submit(http: httpx.AsyncClient, intake: str, person: dict):
    body = submission(JUDICIAL_RECORD, agency_code=CENTRE, applicant=person)
    return http.post(f"{intake}/v1/dossiers", json=body)


async def test_a_matching_citizen_passes_and_a_mismatched_one_is_refused(platform):
    intake, db = platform["intake"].url, platform["population"].url
    async with platform_http() as http:
        assert (await http.post(f"{db}/control/citizens", json=[citizen(1)], auth=None)).status_code == 200
        # the name as typed with other spacing and case still matches; no date of birth given
        r = await submit(http, intake, applicant(1, full_name="đinh thị  ngọc ánh"))
        assert r.status_code == 201, r.text
        assert r.json()["identity_status"] == "confirmed"
        assert r.json()["identity_prefilled"] == ["date_of_birth", "permanent_address"]

        wrong_name = await submit(http, intake, applicant(1, full_name="Đinh Thị Ngọc Anh"))  # Ánh, not Anh
        assert wrong_name.status_code == 422
        [reason] = wrong_name.json()["reasons"]
        assert reason["code"] == "identity_mismatch" and "họ tên" in reason["message"]
        assert "Ngọc" not in reason["message"]  # the reason names the field, never the values

        wrong_birth = await submit(http, intake, applicant(1, date_of_birth="1988-03-01"))
        assert [x["code"] for x in wrong_birth.json()["reasons"]] == ["identity_mismatch"]
        unknown = await submit(http, intake, applicant(2))
        assert [x["code"] for x in unknown.json()["reasons"]] == ["identity_not_found"]
        # a procedure not connected to the database is not checked
        other = await http.post(f"{intake}/v1/dossiers", json=submission("1.001193", applicant=applicant(3)))
        assert other.status_code == 201 and other.json()["identity_status"] == "not_checked"


async def test_the_database_down_then_up_confirms_or_flags_what_was_received_meanwhile(platform):
    intake, db = platform["intake"].url, platform["population"].url
    async with platform_http() as http:
        await http.post(f"{db}/control/citizens", json=[citizen(10)], auth=None)
        await http.post(f"{db}/control", json={"down": True}, auth=None)
        try:
            received = []
            for person in (applicant(10), applicant(11)):  # 11: not in the database
                r = await submit(http, intake, person)
                assert r.status_code == 201, r.text  # the counter is not held up
                assert r.json()["identity_status"] == "to_confirm"
                received.append(r.json()["code"])
            for n in range(12, 16):  # enough failures in a row to open the circuit
                await submit(http, intake, applicant(n))

            async def circuit_open():
                ops = (await http.get(f"{intake}/v1/operations")).json()
                breaker = ops["third_parties"]["population"]["breaker"]
                return breaker if breaker["state"] in ("open", "half_open") and breaker["trips"] >= 1 else None

            await eventually(circuit_open, timeout=30, what="the circuit breaker open on the operations page")
        finally:
            await http.post(f"{db}/control", json={"down": False}, auth=None)

        async def checked(code: str, status: str):
            d = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
            return d if d["identity_status"] == status else None

        confirmed = await eventually(lambda: checked(received[0], "confirmed"), timeout=60, what="confirmed later")
        assert "permanent_address" in confirmed["identity_prefilled"]
        await eventually(lambda: checked(received[1], "failed"), timeout=60, what="flagged later")

        async def flagged_on_timeline():
            # the timeline is written from the event, after the status: wait for it too
            d = (await http.get(f"{intake}/v1/dossiers/{received[1]}")).json()
            entries = [h for h in d["history"] if h["event"] == "identity_checked"]
            return entries if any("cán bộ cần kiểm tra" in h["summary"] for h in entries) else None

        await eventually(flagged_on_timeline, timeout=30, what="the failed check on the dossier's timeline")

        async def officials_told():
            delivered = (await http.get(f"{platform['messaging'].url}/control/messages", auth=None)).json()["delivered"]
            mails = [m for m in delivered if m["channel"] == "email" and received[1] in m.get("subject", "")]
            return mails if len(mails) >= 2 else None

        # the receiving agency's official and its manager are told by e-mail, each once; the
        # message names the field, never the applicant's data
        mails = await eventually(officials_told, timeout=30, what="the officials told of the failed check")
        assert sorted(m["to"] for m in mails) == [
            "manager-province@lgsp.example.vn",
            "official-000.00.01.h40@lgsp.example.vn",
        ]
        assert all(
            "số định danh cá nhân" in m["text"] and "0372" not in m["text"] and "Ánh" not in m["text"] for m in mails
        )
        delivered = (await http.get(f"{platform['messaging'].url}/control/messages", auth=None)).json()["delivered"]
        assert not [m for m in delivered if m["channel"] == "email" and received[0] in m.get("subject", "")]
        ops = (await http.get(f"{intake}/v1/operations")).json()
        assert ops["third_parties"]["population"]["breaker"]["state"] == "closed"
