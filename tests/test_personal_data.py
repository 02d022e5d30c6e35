"""Citizens' ID and phone numbers sealed field by field (AES-GCM): in intake's and notify's
tables and in the events, opened only where they must be used (the SMS gateway gets the number)."""

from __future__ import annotations

import json

import asyncpg
import pytest

from shared.personal_data import PersonalDataError, PersonalDataKeys, local_keys
from shared.topic_reader import all_records
from shared.topics import DOSSIER
from tests.helpers import APPLICANT, IDENTITIES, eventually, header, kafka_operator, platform_http, submission

KEY_A = "a1:" + "A" * 43
KEY_B = "b2:" + "B" * 43


def test_sealing_binds_the_field_refuses_tampering_and_rotates():
    old = PersonalDataKeys.parse(KEY_A, "bG9va3Vw")
    sealed = old.seal("0912345678", "phone")
    assert sealed.startswith("pd1.a1.") and "0912345678" not in sealed
    assert old.seal("0912345678", "phone") != sealed  # a fresh nonce each time
    assert old.open(sealed, "phone") == "0912345678"
    assert old.open("0912345678", "phone") == "0912345678"  # stored before encryption: as it is
    with pytest.raises(PersonalDataError):
        old.open(sealed, "id_number")  # a sealed phone is not an ID number
    with pytest.raises(PersonalDataError):
        old.open(sealed[:-2] + ("AA" if not sealed.endswith("AA") else "BB"), "phone")
    rotated = PersonalDataKeys.parse(f"{KEY_B},{KEY_A}", "bG9va3Vw")  # the new key seals, the old still opens
    assert rotated.open(sealed, "phone") == "0912345678" and rotated.seal("x", "phone").startswith("pd1.b2.")
    with pytest.raises(PersonalDataError, match="a1"):
        PersonalDataKeys.parse(KEY_B, "bG9va3Vw").open(sealed, "phone")  # removed too early: says which key
    assert old.lookup_hash("0912345678") == rotated.lookup_hash(" 0912345678 ") != old.lookup_hash("0912345679")
    assert PersonalDataKeys.parse(KEY_A, "b3RoZXI").lookup_hash("0912345678") != old.lookup_hash("0912345678")
    assert old.open(old.seal("Nguyễn Thị Hồng Nhung", "full_name"), "full_name") == "Nguyễn Thị Hồng Nhung"
    for bad in ("nokey", "a1:short", "a-1:" + "A" * 43):
        with pytest.raises(ValueError):
            PersonalDataKeys.parse(bad, "")


async def test_id_and_phone_numbers_are_sealed_at_rest_and_in_events(platform, test_env):
    applicant = {**APPLICANT, "id_number": "034199001122", "phone": "0978123456"}
    async with platform_http() as http:
        r = await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", applicant=applicant))
        assert r.status_code == 201, r.text
        dossier = r.json()

        async def texted():
            sent = (await http.get(f"{platform['messaging'].url}/control/messages")).json()["delivered"]
            return [m for m in sent if dossier["code"] in m["text"]]

        messages = await eventually(texted, what="the receipt message")
        shown = (
            await http.get(
                f"{platform['notify'].url}/v1/dossiers/{dossier['code']}/notifications", auth=IDENTITIES.operator
            )
        ).json()
    assert {m["to"] for m in messages if m["channel"] in ("sms", "zalo")} == {"0978123456"}  # opened to send
    assert shown and all("pd1." not in n["address"] and "0978123456" not in n["address"] for n in shown)

    keys = PersonalDataKeys.parse(*local_keys())
    records = await all_records(kafka_operator(), f"{test_env['LGSP_TOPIC_PREFIX']}.{DOSSIER.name}")
    [received] = [
        json.loads(r.value)
        for r in records
        if header(r, "ce_subject") == dossier["id"] and header(r, "ce_type") == "vn.lgsp.dossier.received.v1"
    ]
    assert keys.open(received["applicant"]["id_number"], "id_number") == "034199001122"
    assert keys.open(received["applicant"]["phone"], "phone") == "0978123456"
    assert received["applicant"]["full_name"] == APPLICANT["full_name"]  # names and addresses travel as they are

    conn = await asyncpg.connect(test_env["DATABASE_URL"])
    try:
        prefix = test_env["LGSP_SCHEMA_PREFIX"]
        stored = [
            await conn.fetchval(f'SELECT applicant::text FROM "{prefix}intake".dossiers WHERE id = $1', dossier["id"]),
            await conn.fetchval(f'SELECT phone FROM "{prefix}notify".recipients WHERE dossier_id = $1', dossier["id"]),
            *[
                r["address"]
                for r in await conn.fetch(
                    f'SELECT address FROM "{prefix}notify".notifications '
                    "WHERE dossier_id = $1 AND channel <> 'email'",
                    dossier["id"],
                )
            ],
        ]
    finally:
        await conn.close()
    assert len(stored) >= 3 and all(stored)
    for text in stored:
        assert "034199001122" not in text and "0978123456" not in text and "pd1." in text
