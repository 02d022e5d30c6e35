"""Intake's HTTP routes: translate the wire format into commands and call the handlers."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from services.intake import export, files, handlers, payments, portal, publicity, report
from services.intake.schemas import (
    CitizenLookupOut,
    CitizenRating,
    DossierOut,
    PublicCatalogue,
    RateDossier,
    RatingOut,
    RefusalOut,
    SubmitDossier,
    SupplementDossier,
)
from shared.access import Caller, Resource
from shared.deps import CallerDep, ReferenceDep, RuntimeDep
from shared.dossier_files import list_files, open_file
from shared.events import Withdraw
from shared.files import UPLOAD_BODY, FileOut, FileStored
from shared.http import DossierCode, FileHash, problem
from shared.reference import Reference
from shared.reference.calendar import LOCAL_TZ, CalendarNotCovered
from shared.runtime import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["dossiers"])
EXPORT_LATE_MAX = 100_000  # an export lists every late dossier of its period
REPORT_YEARS = (2000, 2100)  # a report period lies within these years (the upper one excluded)


def _is_own_counter(caller: Caller, agency_code: str) -> bool:
    """The receiving agency's own counter software: the token's role and agency, never the body."""
    return "counter" in caller.roles and caller.agency is not None and caller.agency == agency_code


@router.post(
    "/dossiers",
    response_model=DossierOut,
    status_code=201,
    responses={
        200: {"description": "A retry with a known Idempotency-Key: the same dossier"},
        422: {
            "model": RefusalOut,
            "description": "Refused at receipt, with every reason (recorded, and an event emitted)",
        },
    },
)
async def submit_dossier(
    cmd: SubmitDossier,
    request: Request,
    rt: RuntimeDep,
    ref: ReferenceDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: str | None = Header(
        None, min_length=1, max_length=200, description="Makes a retried submission return the same outcome"
    ),
):
    try:
        outcome, created = await handlers.submit_dossier(
            cmd,
            **_receipt(rt, ref, caller, idempotency_key),
            may_backdate=_is_own_counter(caller, cmd.agency_code),
            population=request.app.state.population,
        )
    except CalendarNotCovered as exc:
        return problem(503, f"cannot compute a due date: {exc}")
    if isinstance(outcome, RefusalOut):
        return JSONResponse(outcome.model_dump(mode="json"), status_code=422, media_type="application/problem+json")
    rt.wake_workers()  # the portal's update is waiting
    if not created:
        response.status_code = 200
    return outcome


def _receipt(rt: ServiceRuntime, ref: Reference, caller: Caller, idempotency_key: str | None) -> dict:
    """What a submission and a pickup request both need from the service and the caller."""
    return dict(
        pool=rt.pool,
        outbox=rt.outbox,
        ref=ref,
        settings=rt.settings,
        idempotency_key=_scoped(caller, idempotency_key),
        now=rt.clock.now(),
        submitted_by=caller.client_id,
    )


def _scoped(caller: Caller, idempotency_key: str | None) -> str | None:
    """Idempotency keys belong to the client that sent them: two portals may use the same one."""
    return f"{caller.client_id}/{idempotency_key}" if idempotency_key else None


async def dossier_resource(request: Request, code: str) -> Resource | None:
    """For the access policy: the dossier's receiving agency and who submitted it."""
    row = await request.app.state.runtime.pool.fetchrow(
        "SELECT agency_code, submitted_by FROM dossiers WHERE code = $1", code
    )
    return Resource(frozenset({row["agency_code"]}), row["submitted_by"]) if row else None


async def pickup_resource(request: Request, pickup_id: str) -> Resource | None:
    try:
        pickup = uuid.UUID(pickup_id)
    except ValueError:
        return None  # the route answers 422
    row = await request.app.state.runtime.pool.fetchrow(
        "SELECT command::jsonb->>'agency_code' AS agency_code, submitted_by FROM pickups WHERE dossier_id = $1", pickup
    )
    return Resource(frozenset({row["agency_code"]}), row["submitted_by"]) if row else None


@router.post(
    "/pickups",
    status_code=202,
    responses={
        422: {"model": RefusalOut, "description": "Refused before the post is sent, with every reason"},
    },
)
async def request_pickup(
    cmd: SubmitDossier,
    rt: RuntimeDep,
    ref: ReferenceDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: str | None = Header(None, min_length=1, max_length=200),
):
    """Ask the public postal service (BCCI) to collect the dossier at the applicant's address.
    The dossier is received, and gets its code, when the post hands it to the counter."""
    if cmd.channel.value != "postal":
        return problem(422, "a pickup is a postal submission: channel must be 'postal'")
    outcome, created = await handlers.request_pickup(cmd, **_receipt(rt, ref, caller, idempotency_key))
    if isinstance(outcome, RefusalOut):
        return JSONResponse(outcome.model_dump(mode="json"), status_code=422, media_type="application/problem+json")
    rt.wake_workers()  # the portal's update is waiting
    if not created:
        response.status_code = 200
    return {"pickup_id": str(outcome), "status": "pickup_requested"}


@router.get("/pickups/{pickup_id}")
async def pickup_status(pickup_id: uuid.UUID, rt: RuntimeDep):
    row = await rt.pool.fetchrow(
        "SELECT p.status, d.code FROM pickups p LEFT JOIN dossiers d ON d.id = p.dossier_id WHERE p.dossier_id = $1",
        pickup_id,
    )
    if row is None:
        return problem(404, f"no pickup {pickup_id!r}")
    return {"pickup_id": str(pickup_id), "status": row["status"], "dossier_code": row["code"]}


class ReportQuery:
    """What a report is asked for: its period (free dates or the regime's), its area, the page
    of its late list. Shared by the report and its exports."""

    def __init__(
        self,
        start: datetime | None = Query(
            None, alias="from", description=f"ISO 8601 with a zone, within {REPORT_YEARS[0]}..{REPORT_YEARS[1]}"
        ),
        end: datetime | None = Query(
            None, alias="to", description="ISO 8601 with a zone, after `from`, at most 10 years later"
        ),
        period: str | None = Query(
            None,
            min_length=4,
            max_length=7,
            pattern=report.PERIOD_PATTERN,
            description="Instead of from/to: a period as the reporting regime closes it (Decree 09/2019: the 15th "
            "of the month before to the 14th): `2026-11`, `2026-Q4` or `2026`",
            examples=["2026-11"],
        ),
        area: str | None = Query(
            None,
            min_length=1,
            max_length=35,
            description="An agency code: the report of that agency and every agency under it (a district's "
            "departments and communes). A manager's report is of their own area by default; an official's of "
            "their agency",
        ),
        late_offset: int = Query(0, ge=0, le=1_000_000, description="The late list's page: how many to skip"),
        late_limit: int = Query(report.LATE_PAGE, ge=1, le=500, description="The late list's page: how many"),
    ) -> None:
        self.start, self.end, self.period, self.area = start, end, period, area
        self.late_offset, self.late_limit = late_offset, late_limit

    def period_or_problem(self) -> tuple[datetime, datetime] | JSONResponse:
        start, end = self.start, self.end
        if self.period is not None:
            if start is not None or end is not None:
                return problem(422, "give either 'period' or 'from' and 'to'", [{"field": "period", "reason": "both"}])
            start, end = report.regime_period(self.period)
        if start is None or end is None:
            return problem(
                422,
                "give 'from' and 'to', or 'period'",
                [{"field": "from" if start is None else "to", "reason": "missing"}],
            )
        for name, value in (("from", start), ("to", end)):
            if value.tzinfo is None:
                return problem(
                    422, f"'{name}' must be an ISO 8601 time with a zone", [{"field": name, "reason": "no zone"}]
                )
            if not REPORT_YEARS[0] <= _utc_year(value) < REPORT_YEARS[1]:
                return problem(
                    422,
                    f"'{name}' must lie within {REPORT_YEARS[0]}..{REPORT_YEARS[1]}",
                    [{"field": name, "reason": "out of range"}],
                )
        if end <= start or end - start > timedelta(days=3660):
            return problem(
                422, "'to' must be after 'from' and at most 10 years later", [{"field": "to", "reason": "bad period"}]
            )
        return start, end

    async def run(self, rt: ServiceRuntime, ref: Reference, caller: Caller) -> dict | JSONResponse:
        period = self.period_or_problem()
        if isinstance(period, JSONResponse):
            return period
        try:
            area = report.area_for(caller.roles, caller.agency, self.area, ref)
        except report.AreaRefused as exc:
            return problem(exc.status, exc.reason, [{"field": "area", "reason": exc.reason}])
        body = await report.compute(
            rt.pool,
            ref,
            *period,
            rt.clock.now(),
            self.late_offset,
            self.late_limit,
            area=report.area_codes(area, caller.roles, ref),
        )
        return {**body, "area": area}


ReportQueryDep = Annotated[ReportQuery, Depends()]


@router.get("/reports", tags=["operations"])
async def management_report(rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep, q: ReportQueryDep):
    """Per agency, level and in all, for [from, to) (or the regime's ``period``), of the
    caller's area: received, carried over, resolved early / on time / late, in progress on time
    / overdue, returned on time or late, online and BCCI shares, apologies owed and sent,
    digitisation, and each agency's own steps held and overrun; the dossiers that lost points,
    with whose step overran. Lateness is judged at the end of the period, or now if that is
    earlier."""
    return await q.run(rt, ref, caller)


class ExportFormat(str, Enum):
    xlsx = "xlsx"
    csv = "csv"


EXPORT_TYPES = {
    ExportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.csv: "text/csv; charset=utf-8",
}


@router.get(
    "/reports/export",
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {t: {} for t in EXPORT_TYPES.values()}, "description": "The report as a file"}},
)
async def export_report(
    rt: RuntimeDep,
    ref: ReferenceDep,
    caller: CallerDep,
    q: ReportQueryDep,
    format: ExportFormat = Query(
        ExportFormat.xlsx, description="xlsx (with the score card and the late dossiers) or csv"
    ),
):
    """The same report as a file managers open in a spreadsheet: one row per agency, then the
    levels and the total, with Vietnamese headers; the .xlsx adds Decision 766's score card and
    every dossier that lost points (the whole list, not a page)."""
    q.late_offset, q.late_limit = 0, EXPORT_LATE_MAX
    body = await q.run(rt, ref, caller)
    if isinstance(body, JSONResponse):
        return body
    data = export.to_xlsx(body, ref.catalogue.agencies) if format is ExportFormat.xlsx else export.to_csv(body)
    name = f"bao-cao-{body['from'].astimezone(LOCAL_TZ):%Y%m%d}-{body['to'].astimezone(LOCAL_TZ):%Y%m%d}.{format.value}"
    return Response(
        data, media_type=EXPORT_TYPES[format], headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _utc_year(moment: datetime) -> int:
    try:
        return moment.astimezone(timezone.utc).year
    except OverflowError:  # 9999-12-31T23:59-12:00 has no UTC form
        return 10_000


@router.get("/portal-sync", tags=["operations"])
async def portal_sync(rt: RuntimeDep):
    """What the national portal still has to be told, and what it refused."""
    return await portal.overview(rt.pool)


@router.get("/dossiers/{code}", response_model=DossierOut)
async def get_dossier(code: DossierCode, rt: RuntimeDep):
    return await handlers.get_dossier(code, pool=rt.pool)


@router.get("/dossiers/{code}/slip")
async def appointment_slip(code: DossierCode, rt: RuntimeDep, ref: ReferenceDep):
    """The receipt-and-appointment slip (Giấy tiếp nhận hồ sơ và hẹn trả kết quả)."""
    return await handlers.appointment_slip(code, pool=rt.pool, ref=ref, pd=rt.settings.personal_data)


@router.get("/lookup/{code}", response_model=CitizenLookupOut, tags=["citizens"])
async def citizen_lookup(
    code: DossierCode,
    rt: RuntimeDep,
    key: str = Query(min_length=1, max_length=16, description="The lookup key printed on the slip (Mã tra cứu)"),
):
    """A citizen follows their dossier with its code and the lookup key from the slip, without
    signing in. An unknown code and a wrong key get the same 404."""
    return await handlers.citizen_lookup(code, key, pool=rt.pool, pd=rt.settings.personal_data)


@router.get("/public/procedures", response_model=PublicCatalogue, tags=["citizens"])
async def public_catalogue(
    rt: RuntimeDep,
    ref: ReferenceDep,
    on: date | None = Query(
        None, description="The day the catalogue applies on (default today); withdrawn ones are left out"
    ),
):
    """The procedure catalogue as published to citizens: every procedure in force on the day,
    with its receiving level, time limit, fees, components, channels, whether it is offered
    fully or partly online, and its steps. Public: no token."""
    day = on or rt.clock.now().astimezone(LOCAL_TZ).date()
    if not REPORT_YEARS[0] <= day.year < REPORT_YEARS[1]:
        return problem(
            422,
            f"'on' must lie within {REPORT_YEARS[0]}..{REPORT_YEARS[1]}",
            [{"field": "on", "reason": "out of range"}],
        )
    listed = [publicity.published(p) for p in sorted(ref.catalogue.in_force(day), key=lambda p: p.code)]
    offered = {level: sum(p.online == level for p in listed) for level in ("full", "partial", "none")}
    return PublicCatalogue(on=day, procedures=listed, offered_online=offered)


@router.post("/payments/callback", status_code=204, tags=["payments"], response_class=Response)
async def payment_callback(request: Request, rt: RuntimeDep, ref: ReferenceDep):
    """The payment platform tells us an order was paid: signed (HMAC over the timestamp and the
    body), recent, applied once however often it comes (polling covers a lost one)."""
    client = request.app.state.payments
    body = await request.body()
    if client is None or not client.callback_is_genuine(
        request.headers.get("x-timestamp", ""), body, request.headers.get("x-signature", "")
    ):
        return problem(401, "the callback is not signed by the payment platform, or is stale")
    try:
        order = json.loads(body)
    except ValueError:
        order = None
    if not isinstance(order, dict) or not isinstance(order.get("order_id"), str):
        return problem(400, "the callback's body is not an order")
    async with rt.pool.acquire() as conn, conn.transaction():
        moved = await payments.settle(conn, order, rt.outbox, ref, rt.clock.now())
    if moved:
        rt.after_write()
    return Response(status_code=204)


@router.post("/lookup/{code}/rating", response_model=RatingOut, status_code=201, tags=["citizens"])
async def citizen_rating(code: DossierCode, cmd: CitizenRating, rt: RuntimeDep):
    """The citizen rates how their dossier was handled, with the lookup key printed on the slip
    (the link in the result's message leads here): once, after the result. 409 before the
    result or when rated already; an unknown code and a wrong key get the same 404."""
    return await handlers.rate_dossier(
        code,
        cmd,
        source="lookup",
        rated_by="citizen",
        pool=rt.pool,
        now=rt.clock.now(),
        pd=rt.settings.personal_data,
        key=cmd.key,
    )


@router.post("/dossiers/{code}/rating", response_model=RatingOut, status_code=201, tags=["citizens"])
async def counter_rating(code: DossierCode, cmd: RateDossier, rt: RuntimeDep, caller: CallerDep):
    """A rating given on the device at the counter, when the citizen collects the result in
    person: once per dossier, after the result."""
    return await handlers.rate_dossier(
        code,
        cmd,
        source="counter",
        rated_by=caller.client_id,
        pool=rt.pool,
        now=rt.clock.now(),
        pd=rt.settings.personal_data,
    )


@router.post("/dossiers/{code}/withdraw", response_model=DossierOut)
async def withdraw_awaiting_payment(code: DossierCode, cmd: Withdraw, rt: RuntimeDep):
    """The citizen withdraws a dossier that still waits for its fee (routing does not have it
    yet): it ends here, and its payment order is cancelled, or refunded when it was paid
    meanwhile. 409 once the fee is paid: routing then takes the withdrawal."""
    return await handlers.withdraw_awaiting_payment(code, cmd, pool=rt.pool, outbox=rt.outbox, now=rt.clock.now())


@router.post("/dossiers/{code}/supplements", response_model=DossierOut)
async def supplement_dossier(code: DossierCode, cmd: SupplementDossier, rt: RuntimeDep, caller: CallerDep):
    """The citizen brings what a supplement request asked for; routing resumes the clock."""
    return await handlers.supplement_dossier(
        code,
        cmd,
        pool=rt.pool,
        outbox=rt.outbox,
        now=rt.clock.now(),
        settings=rt.settings,
        uploaded_by=caller.client_id,
    )


@router.post("/files", status_code=201, response_model=FileStored, openapi_extra=UPLOAD_BODY, tags=["files"])
async def upload_file(request: Request, rt: RuntimeDep, caller: CallerDep):
    """A component's file (the applicant's paper scanned, or a file they sent), stored once
    under its SHA-256 and streamed in as it arrives. Its type is judged by its bytes (PDF,
    JPEG, PNG); at most ``LGSP_FILE_MAX_BYTES``. A dossier then names it by that hash: only
    files this same system uploaded can be bound to its dossiers."""
    blob = await files.store_upload(
        rt.pool, rt.files(), request.stream(), rt.settings.file_max_bytes, caller.client_id, rt.clock.now()
    )
    return FileStored(sha256=blob.sha256, size=blob.size, media_type=blob.media_type)


@router.get("/dossiers/{code}/files", response_model=list[FileOut], tags=["files"])
async def dossier_files(code: DossierCode, rt: RuntimeDep):
    """The dossier's files: components, supplements and its result."""
    return await list_files(rt, "id", code)


@router.get("/dossiers/{code}/files/{sha256}", tags=["files"], response_class=Response)
async def dossier_file(code: DossierCode, sha256: FileHash, rt: RuntimeDep, caller: CallerDep):
    """One of the dossier's files, streamed; the opening is recorded on the dossier's timeline."""
    return await open_file(rt, "id", code, sha256, caller)
