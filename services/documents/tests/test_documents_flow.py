"""Official documents across levels against the running platform: signed twice with the run's
test PKI, uploaded once, sent over the document topic, checked on arrival, then moved by the
receivers through the edXML statuses, each once and in order, as the sender sees them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import httpx
import pytest

from ops.signing import document_pdf, sign, sign_twice
from tests.helpers import IDENTITIES, eventually

COMMUNE, DISTRICT, PROVINCE = "000.21.12.H40", "000.00.12.H40", "000.00.00.H40"
SUMMARY = "V/v đề nghị thẩm định hồ sơ cấp giấy phép xây dựng nhà ở riêng lẻ tại xã Ninh Hải"


@pytest.fixture(scope="module")
def documents(platform) -> str:
    return platform["documents"].url


async def signed_by(pki, agency: str, number: str, person: str | None = None, agency_cred: str | None = None) -> bytes:
    pdf = document_pdf(number, SUMMARY, ["Kinh gui: cac co quan lien quan"])
    return await sign_twice(
        pdf, pki.credential(person or f"official-{agency}"), pki.credential(agency_cred or f"agency-{agency}")
    )


async def send(base: str, agency: str, pdf: bytes, number: str, recipients: list[str], **extra) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(agency)) as http:
        up = await http.post(f"{base}/v1/documents/files", content=pdf, headers={"content-type": "application/pdf"})
        assert up.status_code == 201, up.text
        body = {
            "agency_code": agency,
            "number": number,
            "issued_on": "2026-11-24",
            "summary": SUMMARY,
            "doc_type": "Công văn",
            "urgency": "urgent",
            "recipients": recipients,
            "file_sha256": up.json()["sha256"],
            **extra,
        }
        return await http.post(f"{base}/v1/documents", json=body)


async def view(base: str, agency: str, document_id: str) -> dict:
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(agency)) as http:
        r = await http.get(f"{base}/v1/documents/{document_id}")
        assert r.status_code == 200, r.text
        return r.json()


async def settled(base: str, agency: str, document_id: str) -> dict:
    """The document once no delivery is still being sent."""

    async def probe():
        doc = await view(base, agency, document_id)
        return doc if all(d["status"] != "sending" for d in doc["deliveries"]) else None

    return await eventually(probe, what="every recipient's copy to arrive or be refused")


async def act(base: str, agency: str, document_id: str, status: str, reason: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(agency)) as http:
        return await http.post(
            f"{base}/v1/documents/{document_id}/deliveries/{agency}/status",
            json={"status": status, **({"reason": reason} if reason else {})},
        )


def trail(doc: dict, agency: str) -> list[tuple[str, str]]:
    delivery = next(d for d in doc["deliveries"] if d["recipient_agency"] == agency)
    return [(s["status"], s["code"]) for s in delivery["statuses"]]


async def test_a_document_signed_twice_goes_up_two_levels_and_back_with_every_status_once_in_order(documents, pki):
    # the commune asks the district, the district reports to the province, the province answers the commune
    chain = [
        (COMMUNE, DISTRICT, "15/UBND-VP"),
        (DISTRICT, PROVINCE, "230/UBND-QLĐT"),
        (PROVINCE, COMMUNE, "4120/UBND-XD"),
    ]
    for sender, recipient, number in chain:
        pdf = await signed_by(pki, sender, number)
        r = await send(documents, sender, pdf, number, [recipient])
        assert r.status_code == 201, r.text
        document_id = r.json()["id"]
        doc = await settled(documents, sender, document_id)
        assert trail(doc, recipient) == [("arrived", "01")], doc
        assert doc["summary"] == SUMMARY and doc["number"] == number  # Vietnamese intact, đ included

        # out of order is refused with the reason; in order, each move is recorded once
        early = await act(documents, recipient, document_id, "done")
        assert early.status_code == 409 and "arrived can move to accepted, refused" in early.json()["title"]
        for status in ("accepted", "assigned", "in_processing", "done"):
            assert (await act(documents, recipient, document_id, status)).status_code == 200
        again = await act(documents, recipient, document_id, "done")
        assert again.status_code == 409

        # the receiving official opens it (recorded), the sender sees everything in order
        async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(recipient)) as http:
            opened = await http.get(f"{documents}/v1/documents/{document_id}/deliveries/{recipient}/file")
        assert opened.status_code == 200 and opened.content == pdf
        doc = await view(documents, sender, document_id)
        assert trail(doc, recipient) == [
            ("arrived", "01"),
            ("accepted", "03"),
            ("assigned", "04"),
            ("in_processing", "05"),
            ("done", "06"),
        ]
        [seen] = next(d for d in doc["deliveries"] if d["recipient_agency"] == recipient)["views"]
        assert seen["username"] == f"official-{recipient.lower()}"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("tampered", "the signed content was changed after signing"),
        ("person only", "the agency's signature (ký số cơ quan) is missing"),
        ("revoked", "the certificate is revoked"),
        ("untrusted", "the certificate does not chain to a trusted root"),
    ],
)
async def test_a_bad_document_is_refused_with_its_reason_and_never_opens(documents, pki, case, expected):
    number = f"9{len(case)}/UBND-{case[:3].upper()}"
    if case == "tampered":
        pdf = (await signed_by(pki, COMMUNE, number)).replace(b"Kinh gui", b"Kinh guI")
    elif case == "person only":
        pdf = await sign(document_pdf(number, SUMMARY, ["x"]), pki.credential(f"official-{COMMUNE}"), "KySoCaNhan")
    elif case == "revoked":
        pdf = await signed_by(pki, COMMUNE, number, person="revoked-official")
    else:
        pdf = await signed_by(pki, COMMUNE, number, agency_cred="untrusted-agency")
    r = await send(documents, COMMUNE, pdf, number, [DISTRICT])
    assert r.status_code == 201, r.text
    doc = await settled(documents, COMMUNE, r.json()["id"])
    [(status, code)] = trail(doc, DISTRICT)
    delivery = doc["deliveries"][0]
    assert (status, code) == ("refused", "02")
    assert expected in delivery["reason"], delivery["reason"]  # the sender sees why
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(DISTRICT)) as http:
        opened = await http.get(f"{documents}/v1/documents/{r.json()['id']}/deliveries/{DISTRICT}/file")
    assert opened.status_code == 409  # nothing refused is ever shown as received


async def test_the_sender_recalls_one_document_and_updates_another(documents, pki):
    first = await send(
        documents, COMMUNE, await signed_by(pki, COMMUNE, "31/UBND-VP"), "31/UBND-VP", [DISTRICT, PROVINCE]
    )
    doc_id = first.json()["id"]
    await settled(documents, COMMUNE, doc_id)
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(COMMUNE)) as http:
        assert (
            await http.post(f"{documents}/v1/documents/{doc_id}/recall", json={"agency_code": COMMUNE})
        ).status_code == 200
    doc = await view(documents, COMMUNE, doc_id)
    assert doc["status"] == "recalled"
    assert {d["recipient_agency"]: trail(doc, d["recipient_agency"])[-1] for d in doc["deliveries"]} == {
        DISTRICT: ("recalled", "13"),
        PROVINCE: ("recalled", "13"),
    }
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(DISTRICT)) as http:
        assert (await http.get(f"{documents}/v1/documents/{doc_id}/deliveries/{DISTRICT}/file")).status_code == 409

    second = await send(documents, COMMUNE, await signed_by(pki, COMMUNE, "32/UBND-VP"), "32/UBND-VP", [DISTRICT])
    doc_id = second.json()["id"]
    await settled(documents, COMMUNE, doc_id)
    corrected = await signed_by(pki, COMMUNE, "32/UBND-VP (sửa)")
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(COMMUNE)) as http:
        up = await http.post(
            f"{documents}/v1/documents/files", content=corrected, headers={"content-type": "application/pdf"}
        )
        r = await http.post(
            f"{documents}/v1/documents/{doc_id}/update",
            json={"agency_code": COMMUNE, "file_sha256": up.json()["sha256"]},
        )
    assert r.status_code == 200 and r.json() == {"version": 2}
    doc = await settled(documents, COMMUNE, doc_id)
    assert trail(doc, DISTRICT) == [("arrived", "01"), ("updated", "15"), ("arrived", "01")]
    assert [s["version"] for s in doc["deliveries"][0]["statuses"]] == [1, 2, 2]
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(DISTRICT)) as http:
        opened = await http.get(f"{documents}/v1/documents/{doc_id}/deliveries/{DISTRICT}/file")
    assert opened.content == corrected


async def test_what_is_never_sent(documents, pki):
    pdf = await signed_by(pki, COMMUNE, "40/UBND-VP")
    classified = await send(documents, COMMUNE, pdf, "40/UBND-VP", [DISTRICT], classification="secret")
    assert classified.status_code == 422 and "may not be exchanged electronically" in classified.json()["title"]
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(COMMUNE)) as http:
        not_pdf = await http.post(
            f"{documents}/v1/documents/files", content=b"hello", headers={"content-type": "application/pdf"}
        )
        assert not_pdf.status_code == 422
        unknown = await http.post(
            f"{documents}/v1/documents",
            json={
                "agency_code": COMMUNE,
                "number": "41/UBND-VP",
                "issued_on": "2026-11-24",
                "summary": SUMMARY,
                "doc_type": "Công văn",
                "recipients": [DISTRICT],
                "file_sha256": "0" * 64,
            },
        )
        assert unknown.status_code == 409 and "POST it to /v1/documents/files" in unknown.json()["title"]
        other_agency = await http.post(
            f"{documents}/v1/documents",
            json={
                "agency_code": DISTRICT,
                "number": "42/UBND-VP",
                "issued_on": "2026-11-24",
                "summary": SUMMARY,
                "doc_type": "Công văn",
                "recipients": [PROVINCE],
                "file_sha256": "0" * 64,
            },
        )
        assert other_agency.status_code == 403


async def test_an_unknown_agency_is_not_a_recipient(documents, pki):
    pdf = await signed_by(pki, COMMUNE, "50/UBND-VP")
    for unknown in ("000.99.99.H40", "phòng văn thư"):  # ours but not in the catalogue; no agency code at all
        r = await send(documents, COMMUNE, pdf, "50/UBND-VP", [unknown])
        assert r.status_code == 422 and unknown in r.json()["title"]


OTHER_PROVINCE = "000.00.00.G01"  # an agency of another province: reached through the national axis


async def test_a_document_for_another_province_goes_through_the_axis_until_it_lands_once(documents, pki, platform):
    axis = platform["axis"].url
    async with httpx.AsyncClient(timeout=10) as sim:
        # the axis refuses the first two pushes, then lists every status twice and newest first
        await sim.post(f"{axis}/control", json={"fail_next": 2, "duplicate": True, "reorder": True})
        try:
            r = await send(
                documents,
                COMMUNE,
                await signed_by(pki, COMMUNE, "60/UBND-VP"),
                "60/UBND-VP",
                [OTHER_PROVINCE, DISTRICT],
            )
            assert r.status_code == 201, r.text
            document_id = r.json()["id"]

            async def answered():
                doc = await view(documents, COMMUNE, document_id)
                return doc if trail(doc, OTHER_PROVINCE)[-1:] == [("accepted", "03")] else None

            doc = await eventually(answered, what="the other province's answers through the axis", timeout=60)
            held = (await sim.get(f"{axis}/control/edocs")).json()
        finally:
            await sim.post(f"{axis}/control", json={})
    assert trail(doc, OTHER_PROVINCE) == [("arrived", "01"), ("accepted", "03")]  # in order, once each
    assert trail(doc, DISTRICT) == [("arrived", "01")]  # ours arrive here, as before
    [edoc_id] = [k for k, v in held["delivered"].items() if k.startswith(document_id)]
    assert held["delivered"][edoc_id] == {"to": OTHER_PROVINCE, "number": "60/UBND-VP"}
    assert held["sends"][edoc_id] == 1  # retried through two refusals, taken once


async def test_a_recall_and_an_update_reach_the_other_province_through_the_axis(documents, pki, platform):
    axis = platform["axis"].url

    async def at_axis(document_id: str, what: str):
        held = (await sim.get(f"{axis}/control/edocs")).json()
        return {k: v for k, v in held[what].items() if k.startswith(document_id)}

    async with httpx.AsyncClient(timeout=10) as sim:
        recalled = (
            await send(documents, COMMUNE, await signed_by(pki, COMMUNE, "61/UBND-VP"), "61/UBND-VP", [OTHER_PROVINCE])
        ).json()["id"]
        updated = (
            await send(documents, COMMUNE, await signed_by(pki, COMMUNE, "62/UBND-VP"), "62/UBND-VP", [OTHER_PROVINCE])
        ).json()["id"]
        for document_id in (recalled, updated):
            await eventually(lambda: at_axis(document_id, "delivered"), what="the axis to take the copy", timeout=60)
        await sim.post(f"{axis}/control", json={"fail_next": 1})  # the first call after this is refused
        async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(COMMUNE)) as http:
            assert (
                await http.post(f"{documents}/v1/documents/{recalled}/recall", json={"agency_code": COMMUNE})
            ).status_code == 200
            corrected = await signed_by(pki, COMMUNE, "62/UBND-VP (sửa)")
            up = await http.post(
                f"{documents}/v1/documents/files", content=corrected, headers={"content-type": "application/pdf"}
            )
            r = await http.post(
                f"{documents}/v1/documents/{updated}/update",
                json={"agency_code": COMMUNE, "file_sha256": up.json()["sha256"]},
            )
            assert r.status_code == 200, r.text

        [first] = (
            await eventually(lambda: at_axis(recalled, "recalled"), what="the recall at the axis", timeout=60)
        ).values()
        assert first == "recalled by the sender"
        [old] = (
            await eventually(lambda: at_axis(updated, "recalled"), what="version 1 taken back", timeout=60)
        ).values()
        assert old == "replaced by version 2"

        async def second_version_answered():
            doc = await view(documents, COMMUNE, updated)
            return doc if trail(doc, OTHER_PROVINCE)[-1:] == [("accepted", "03")] and doc["version"] == 2 else None

        doc = await eventually(second_version_answered, what="version 2 through the axis", timeout=60)
        delivered = await at_axis(updated, "delivered")
        recalls = await at_axis(updated, "recalls")
    assert sorted(delivered) == [f"{updated}:{OTHER_PROVINCE}:v1", f"{updated}:{OTHER_PROVINCE}:v2"]
    assert recalls == {f"{updated}:{OTHER_PROVINCE}:v1": 1}  # told once, though one call was refused
    assert trail(doc, OTHER_PROVINCE) == [
        ("arrived", "01"),
        ("accepted", "03"),
        ("updated", "15"),
        ("arrived", "01"),
        ("accepted", "03"),
    ]
    assert trail(await view(documents, COMMUNE, recalled), OTHER_PROVINCE)[-1] == ("recalled", "13")


async def test_no_copy_is_locked_while_the_axis_is_called_and_a_recall_meanwhile_still_reaches_it(
    documents, pki, platform, local_stack, test_env
):
    """Claim, commit, call, record: while a push is on its way to a slow axis, its copy's row
    is not locked (another transaction takes it at once), and a recall sent meanwhile is told
    to the axis once the push has landed there."""
    axis, table = platform["axis"].url, f"{test_env['LGSP_SCHEMA_PREFIX']}documents.axis_deliveries"
    conn = await asyncpg.connect(local_stack.database_url)
    async with httpx.AsyncClient(timeout=10) as sim:
        await sim.post(f"{axis}/control", json={"delay_s": 3})
        try:
            pdf = await signed_by(pki, COMMUNE, "63/UBND-VP")
            document_id = (await send(documents, COMMUNE, pdf, "63/UBND-VP", [OTHER_PROVINCE])).json()["id"]
            locked_out = in_flight_seen = 0
            for _ in range(150):  # up to ~15 s
                async with conn.transaction():
                    try:
                        row = await conn.fetchrow(
                            f"SELECT state, next_attempt_at > now() + interval '30 seconds' AS claimed FROM {table} "
                            "WHERE document_id = $1 FOR UPDATE NOWAIT",
                            uuid.UUID(document_id),
                        )
                    except asyncpg.LockNotAvailableError:
                        locked_out += 1
                        row = None
                if row is not None and row["state"] == "pending" and row["claimed"] and not in_flight_seen:
                    in_flight_seen = 1  # the push is on its way: the sender recalls the document now
                    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(COMMUNE)) as http:
                        r = await http.post(
                            f"{documents}/v1/documents/{document_id}/recall", json={"agency_code": COMMUNE}
                        )
                        assert r.status_code == 200, r.text
                if row is not None and row["state"] != "pending":
                    break
                await asyncio.sleep(0.1)
            assert locked_out == 0  # no probe found the copy locked while the axis took its time
            assert in_flight_seen  # and the recall went while the push was on its way

            async def recalled_at_axis():
                held = (await sim.get(f"{axis}/control/edocs")).json()
                return {k: v for k, v in held["recalled"].items() if k.startswith(document_id)} or None

            recalled = await eventually(recalled_at_axis, what="the recall told to the axis", timeout=60)
        finally:
            await sim.post(f"{axis}/control", json={})
            await conn.close()
    assert list(recalled.values()) == ["recalled by the sender"]


async def test_a_copy_nobody_opens_in_time_is_flagged_and_its_official_and_manager_are_told(
    documents, pki, platform, local_stack, test_env, clock
):
    r = await send(
        documents, DISTRICT, await signed_by(pki, DISTRICT, "70/UBND-VP"), "70/UBND-VP", [COMMUNE], urgency="express"
    )
    document_id = r.json()["id"]
    await settled(documents, DISTRICT, document_id)
    # the deadline passes (an office hour for an express document): moved on the platform's clock, not waited for
    conn = await asyncpg.connect(local_stack.database_url)
    try:
        await conn.execute(
            f"UPDATE {test_env['LGSP_SCHEMA_PREFIX']}documents.deliveries SET view_due_at = $2 WHERE document_id = $1",
            uuid.UUID(document_id),
            clock.now() - timedelta(minutes=1),
        )
    finally:
        await conn.close()

    async def told():
        async with httpx.AsyncClient(timeout=10) as sim:
            delivered = (await sim.get(f"{platform['messaging'].url}/control/messages")).json()["delivered"]
        mails = [m for m in delivered if m["channel"] == "email" and "70/UBND-VP" in m.get("subject", "")]
        return mails if len(mails) >= 2 else None

    mails = await eventually(told, what="the e-mails about the unopened document", timeout=30)
    assert sorted(m["to"] for m in mails) == [
        "manager-district@lgsp.example.vn",
        "official-000.21.12.h40@lgsp.example.vn",
    ]
    assert all(
        "chưa được cán bộ nào mở xem" in m["text"]
        and "hỏa tốc" in m["text"]
        and "Ủy ban nhân dân xã Ninh Hải" in m["text"]
        for m in mails
    )
    async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(COMMUNE)) as http:
        incoming = (await http.get(f"{documents}/v1/agencies/{COMMUNE}/documents")).json()
    assert next(d for d in incoming if d["id"] == document_id)["unviewed_overdue"] is True
