"""The national public-service portal edge: our model mapped to its vocabulary in one place,
its client, and the worker that pushes each dossier's status changes in order.

Vocabulary (DOMAIN.md): ``TrangThaiHoSo`` 1 newly registered, 2 received, 3 not received,
4 processing, 5 supplement requested, 6 financial obligation, 7 withdrawal requested, 8 processing
stopped, 9 processed, 10 result returned; ``HinhThuc`` 1 counter, 2 online, 3 postal; dates
``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import asyncpg
import httpx

from shared.personal_data import PersonalDataKeys
from shared.reference import Reference
from shared.reference.calendar import LOCAL_TZ

log = logging.getLogger(__name__)

# our dossier status -> TrangThaiHoSo
STATUS_CODES = {
    "awaiting_payment": 6,  # Yêu cầu thực hiện nghĩa vụ tài chính
    "received": 2,
    "processing": 4,
    "supplement_requested": 5,
    "supplemented": 5,
    "withdrawn": 7,
    "stopped": 8,
    "resolved": 9,
    "returned": 10,
}
# Every channel is synced: the national portal computes its indicators (and its per-channel
# sums, KenhThucHien / HinhThuc) from what provinces send, so a dossier received at a counter
# or by post counts only if it is sent too.
CHANNEL_CODES = {"counter": 1, "online": 2, "postal": 3}


def portal_time(moment: datetime | None) -> str | None:
    return moment.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S") if moment else None


def to_portal(
    d: asyncpg.Record, seq: int, procedure_field: str, finished_at: datetime | None, results: list | None = None
) -> dict:
    """One status update of dossier ``d`` (a row of ``dossiers``) in the portal's words;
    ``results``: its result files (name, hash), each pointed to where intake serves it."""
    applicant = json.loads(d["applicant"])
    status = STATUS_CODES[d["status"]]
    body = {
        "SoThuTu": seq,
        "MaHoSo": d["code"],
        "MaTTHC": d["procedure_code"],
        "TenTTHC": d["procedure_name"],
        "MaLinhVuc": procedure_field,
        "ChuHoSo": applicant["full_name"],
        "LoaiDoiTuong": 1,
        "SoDienThoai": applicant["phone"],
        "Email": applicant.get("email") or "",
        "TrichYeuHoSo": d["procedure_name"],
        "TrangThaiHoSo": status,
        "HinhThuc": CHANNEL_CODES[d["channel"]],
        "NgayTiepNhan": portal_time(d["received_at"]),
        "NgayHenTra": portal_time(d["due_at"]),
        "DonViXuLy": d["current_agency"] or d["agency_code"],
    }
    if d.get("paid_online_at"):
        body["DuocThanhToanTrucTuyen"] = 2  # paid online, through the province's gateway
    if status in (9, 10) and finished_at:
        body["NgayKetThucXuLy"] = portal_time(finished_at)
    if status == 10 and finished_at:
        body["NgayTra"] = portal_time(finished_at)
    if results:
        body["DanhSachGiayToKetQua"] = [
            {
                "TenGiayTo": r["name"],
                "DuongDanTepTinKetQua": f"/v1/dossiers/{d['code']}/files/{r['sha256']}",
                "MaBamTepTin": r["sha256"],  # SHA-256: what the portal checks the file it fetches against
            }
            for r in results
        ]
    return body


async def queue_update(
    conn: asyncpg.Connection, d: asyncpg.Record, ref: Reference, at: datetime, now: datetime
) -> None:
    """Queue dossier ``d``'s current state (a ``dossiers`` row) for the portal if it changed
    what the portal shows."""
    if d["status"] not in STATUS_CODES:
        return
    dossier_id = d["id"]
    procedure = ref.catalogue.procedures.get(d["procedure_code"])
    procedure_field = procedure.field if procedure else ""
    last = await conn.fetchrow(
        "SELECT seq, status_code, payload FROM portal_updates WHERE dossier_id = $1 ORDER BY seq DESC LIMIT 1",
        dossier_id,
    )
    seq = (last["seq"] + 1) if last else 1
    results = (
        await conn.fetch(
            "SELECT name, sha256 FROM dossier_files WHERE dossier_id = $1 AND role = 'result' ORDER BY bound_at",
            dossier_id,
        )
        if STATUS_CODES[d["status"]] in (9, 10)  # only a decided dossier has a result to point to
        else []
    )
    payload = to_portal(d, seq, procedure_field, at, list(results))
    if (
        last
        and last["status_code"] == payload["TrangThaiHoSo"]
        and json.loads(last["payload"])["NgayHenTra"] == payload["NgayHenTra"]
    ):
        return  # nothing the portal shows has changed
    await conn.execute(
        "INSERT INTO portal_updates (dossier_id, seq, status_code, payload, status, next_attempt_at, created_at) "
        "VALUES ($1, $2, $3, $4, 'pending', $5, $5)",
        dossier_id,
        seq,
        payload["TrangThaiHoSo"],
        json.dumps(payload, ensure_ascii=False),
        now,
    )


class PortalUnavailable(Exception):
    pass


class PortalRejected(Exception):
    pass


class PortalClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        client_id: str,
        client_secret: str,
        personal_data: PersonalDataKeys | None = None,
    ) -> None:
        self._http, self._url = http, url
        self._personal_data = personal_data  # the phone number is opened only to be sent
        self._credentials = {"client_id": client_id, "client_secret": client_secret}
        self._token: str | None = None

    async def _login(self) -> str:
        r = await self._call("POST", "/auth/token", json=self._credentials)
        self._token = r.json()["access_token"]
        return self._token

    async def _call(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            r = await self._http.request(method, f"{self._url}{path}", **kw)
        except httpx.HTTPError as exc:
            raise PortalUnavailable(type(exc).__name__) from exc
        if r.status_code >= 500:
            raise PortalUnavailable(f"HTTP {r.status_code}")
        return r

    async def push(self, payload: dict) -> None:
        if self._personal_data is not None:
            payload = {**payload, "SoDienThoai": self._personal_data.open(payload.get("SoDienThoai"), "phone")}
        for _ in range(2):  # a second try after the session token expired
            token = self._token or await self._login()
            r = await self._call(
                "POST", "/api/DongBoHoSoMC", json=payload, headers={"Authorization": f"Bearer {token}"}
            )
            if r.status_code == 401:
                self._token = None
                continue
            if r.status_code >= 400:
                raise PortalRejected(f"HTTP {r.status_code}: {r.text[:300]}")
            return
        raise PortalUnavailable("the portal refused our session token twice")


async def sync_due(pool: asyncpg.Pool, client: PortalClient, now: datetime) -> dict[str, int]:
    """Push pending updates, each dossier's in order; a failure holds back that dossier's
    later updates (and only that dossier's) until it goes through."""
    counts = {"sent": 0, "retry": 0, "rejected": 0}
    dossiers = await pool.fetch(
        "SELECT dossier_id FROM portal_updates WHERE status = 'pending' GROUP BY dossier_id "
        "HAVING min(next_attempt_at) <= $1 LIMIT 100",
        now,
    )
    for row in dossiers:
        async with pool.acquire() as conn, conn.transaction():
            # One sender per dossier at a time, whichever intake instance: locking rows alone would
            # let another instance skip a locked first update and send the second before it.
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext('portal:' || $1::uuid::text))", row["dossier_id"]
            ):
                continue  # another instance is sending this dossier's updates
            if await conn.fetchval(
                "SELECT 1 FROM portal_updates WHERE dossier_id = $1 AND status = 'rejected'", row["dossier_id"]
            ):
                continue  # an operator must look at the rejected one first
            updates = await conn.fetch(
                "SELECT * FROM portal_updates WHERE dossier_id = $1 AND status = 'pending' ORDER BY seq FOR UPDATE",
                row["dossier_id"],
            )
            for u in updates:
                if u["next_attempt_at"] > now:
                    break
                try:
                    await client.push(json.loads(u["payload"]))
                except PortalUnavailable as exc:
                    delay = min(0.5 * 2 ** u["attempts"], 60.0)
                    await conn.execute(
                        "UPDATE portal_updates SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4 "
                        "WHERE dossier_id = $1 AND seq = $2",
                        u["dossier_id"],
                        u["seq"],
                        str(exc),
                        now + timedelta(seconds=delay),
                    )
                    counts["retry"] += 1
                    break
                except PortalRejected as exc:
                    await conn.execute(
                        "UPDATE portal_updates SET status = 'rejected', attempts = attempts + 1, last_error = $3 "
                        "WHERE dossier_id = $1 AND seq = $2",
                        u["dossier_id"],
                        u["seq"],
                        str(exc),
                    )
                    log.warning("portal.rejected dossier=%s seq=%d %s", u["dossier_id"], u["seq"], exc)
                    counts["rejected"] += 1
                    break
                await conn.execute(
                    "UPDATE portal_updates SET status = 'sent', attempts = attempts + 1, sent_at = $3 "
                    "WHERE dossier_id = $1 AND seq = $2",
                    u["dossier_id"],
                    u["seq"],
                    now,
                )
                counts["sent"] += 1
    return counts


async def overview(pool: asyncpg.Pool) -> dict:
    """The operator's view: what is waiting, failing or rejected."""
    totals = {
        r["status"]: r["n"]
        for r in await pool.fetch("SELECT status, count(*) AS n FROM portal_updates GROUP BY status")
    }
    problems = await pool.fetch(
        "SELECT d.code, u.seq, u.status, u.status_code, u.attempts, u.last_error, u.next_attempt_at, u.created_at "
        "FROM portal_updates u JOIN dossiers d ON d.id = u.dossier_id "
        "WHERE u.status = 'rejected' OR (u.status = 'pending' AND u.attempts > 0) ORDER BY u.created_at LIMIT 100"
    )
    oldest = await pool.fetchval("SELECT min(created_at) FROM portal_updates WHERE status = 'pending'")
    return {
        "pending": totals.get("pending", 0),
        "sent": totals.get("sent", 0),
        "rejected": totals.get("rejected", 0),
        "oldest_pending": oldest,
        "failing": [dict(p) for p in problems],
    }
