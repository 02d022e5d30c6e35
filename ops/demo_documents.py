"""The demo's official documents: one document signed twice going commune → district →
province and back with its statuses, one refused on arrival with its reason, then a month of
documents between agencies (some opened late, some never) and the monthly report."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from pathlib import Path

import httpx

from ops.identity import IDENTITIES
from ops.pki import TestPki
from ops.signing import document_pdf, sign_twice
from services.documents.report import render
from shared.reference.calendar import LOCAL_TZ

COMMUNE, DISTRICT, PROVINCE = "000.21.12.H40", "000.00.12.H40", "000.00.00.H40"
AGENCIES = (COMMUNE, "000.22.12.H40", "000.23.11.H40", DISTRICT, "000.00.13.H40", PROVINCE, "000.00.05.H40")
SUMMARIES = (
    "V/v đề nghị thẩm định hồ sơ cấp giấy phép xây dựng",
    "V/v báo cáo kết quả giải quyết thủ tục hành chính quý IV",
    "V/v triển khai Đề án 06 trên địa bàn",
    "V/v chấn chỉnh việc tiếp nhận hồ sơ trực tuyến",
)


class Documents:
    def __init__(self, url: str, pki: TestPki, today: str, run_tag: str) -> None:
        self.url, self.pki, self.today = url, pki, today
        self.run_tag = run_tag  # a number is unique per agency and date: each demo run numbers its own

    async def send(
        self,
        sender: str,
        recipients: list[str],
        number: str,
        summary: str,
        urgency: str = "normal",
        tamper: bool = False,
    ) -> str:
        pdf = await sign_twice(
            document_pdf(number, summary, ["Kinh gui: cac co quan lien quan"]),
            self.pki.credential(f"official-{sender}"),
            self.pki.credential(f"agency-{sender}"),
        )
        if tamper:
            pdf = pdf.replace(b"Kinh gui", b"Kinh guI")
        number = number.replace("/", f"-{self.run_tag}/", 1)
        async with httpx.AsyncClient(timeout=30, auth=IDENTITIES.official(sender)) as http:
            up = (
                await http.post(
                    f"{self.url}/v1/documents/files", content=pdf, headers={"content-type": "application/pdf"}
                )
            ).raise_for_status()
            r = await http.post(
                f"{self.url}/v1/documents",
                json={
                    "agency_code": sender,
                    "number": number,
                    "issued_on": self.today,
                    "summary": summary,
                    "doc_type": "Công văn",
                    "urgency": urgency,
                    "recipients": recipients,
                    "file_sha256": up.json()["sha256"],
                },
            )
            return r.raise_for_status().json()["id"]

    async def get(self, document_id: str, as_agency: str) -> dict:
        async with httpx.AsyncClient(timeout=30, auth=IDENTITIES.official(as_agency)) as http:
            return (await http.get(f"{self.url}/v1/documents/{document_id}")).raise_for_status().json()

    async def settled(self, document_id: str, as_agency: str) -> dict:
        for _ in range(200):
            doc = await self.get(document_id, as_agency)
            if all(d["status"] != "sending" for d in doc["deliveries"]):
                return doc
            await asyncio.sleep(0.1)
        raise TimeoutError(f"document {document_id} did not arrive")

    async def work(self, document_id: str, agency: str, moves: tuple[str, ...], open_it: bool) -> None:
        async with httpx.AsyncClient(timeout=30, auth=IDENTITIES.official(agency)) as http:
            if open_it:
                (await http.get(f"{self.url}/v1/documents/{document_id}/deliveries/{agency}/file")).raise_for_status()
            for status in moves:
                (
                    await http.post(
                        f"{self.url}/v1/documents/{document_id}/deliveries/{agency}/status", json={"status": status}
                    )
                ).raise_for_status()


async def journey(docs: Documents, say) -> None:
    say("[demo] official documents: each signed by the official, then by the agency (PAdES, the test PKI)")
    for sender, recipient, number in (
        (COMMUNE, DISTRICT, "15/UBND-VP"),
        (DISTRICT, PROVINCE, "230/UBND-QLĐT"),
        (PROVINCE, COMMUNE, "4120/UBND-XD"),
    ):
        document_id = await docs.send(sender, [recipient], number, SUMMARIES[0], "urgent")
        await docs.settled(document_id, sender)
        await docs.work(document_id, recipient, ("accepted", "assigned", "in_processing", "done"), open_it=True)
        doc = await docs.get(document_id, sender)
        trail = " → ".join(f"{s['status']} ({s['code']})" for s in doc["deliveries"][0]["statuses"])
        say(f"[demo]   {doc['number']:<22} {sender} → {recipient}: {trail}")
    bad = await docs.send(COMMUNE, [DISTRICT], "16/UBND-VP", SUMMARIES[0], tamper=True)
    doc = await docs.settled(bad, COMMUNE)
    say(f"[demo]   16/UBND-VP (one byte changed after signing) refused: {doc['deliveries'][0]['reason']}")


async def month(docs: Documents, count: int, seed: int = 7) -> None:
    """``count`` documents between agencies; recipients open most, some late or never, and
    finish some."""
    rng = random.Random(seed)
    sent = []
    for i in range(count):
        sender = rng.choice(AGENCIES)
        recipients = rng.sample([a for a in AGENCIES if a != sender], rng.randint(1, 2))
        urgency = rng.choice(("normal", "normal", "urgent", "very_urgent", "express"))
        sent.append(
            (
                await docs.send(sender, recipients, f"{100 + i}/VP-{i:03d}", rng.choice(SUMMARIES), urgency),
                sender,
                recipients,
            )
        )
    for document_id, sender, recipients in sent:
        await docs.settled(document_id, sender)
        for agency in recipients:
            if rng.random() < 0.8:
                moves = ("accepted", "in_processing", "done") if rng.random() < 0.6 else ("accepted",)
                await docs.work(document_id, agency, moves, open_it=agency != "000.23.11.H40")


def run(documents_url: str, pki_dir: Path, say, now: datetime, month_documents: int = 40) -> None:
    local = now.astimezone(LOCAL_TZ)
    docs = Documents(documents_url, TestPki(pki_dir), local.date().isoformat(), local.strftime("%H%M%S"))
    asyncio.run(journey(docs, say))
    say(f"[demo] a month of official documents between agencies ({month_documents})…")
    asyncio.run(month(docs, month_documents))


def monthly_report(documents_url: str, month_text: str) -> str:
    r = httpx.get(
        f"{documents_url}/v1/reports/documents", params={"month": month_text}, timeout=30, auth=IDENTITIES.driver
    )
    return render(r.raise_for_status().json())
