"""The console's pages. Each reads the other services with the signed-in person's token and
renders HTML; who may open which page is in shared/access_policy.yaml under ``console``."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.console import views
from services.console.signin import COOKIE, LOGIN_TTL_S, SIGN_IN_COOKIE, SignInFailed
from services.console.sources import SERVICES
from shared.access import AccessDenied
from shared.http import AgencyCode, DossierCode, FileHash
from shared.reference.calendar import LOCAL_TZ
from shared.reference.catalogue import FEE_KIND_VI
from shared.scorecard import scorecard_766

router = APIRouter()
PERIOD_MAX_DAYS = 92


class Service(str, Enum):
    intake = "intake"
    routing = "routing"
    postal = "postal"
    notify = "notify"
    documents = "documents"


def _page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    console = request.app.state.console
    session = getattr(request.state, "session", None)
    caller = getattr(request.state, "caller", None)
    return console.templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "caller": caller,
            "roles": caller.roles if caller else frozenset(),
            **context,
        },
        status_code=status_code,
    )


def _token(request: Request) -> str | None:
    session = getattr(request.state, "session", None)
    return session.access_token if session else None


# ---------------------------------------------------------------- signing in and out


@router.get("/sign-in", include_in_schema=False)
async def sign_in(request: Request, next: str | None = Query(None, max_length=500)):
    console = request.app.state.console
    # from configuration, never from the request's Host header: the code must come back here
    url, binding = await console.sessions.begin(console.redirect_uri, next)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        SIGN_IN_COOKIE,
        binding,
        max_age=LOGIN_TTL_S,
        httponly=True,
        samesite="lax",
        path="/auth/callback",
        secure=console.redirect_uri.startswith("https:"),
    )
    return response


@router.get("/auth/callback", name="signed_in", include_in_schema=False)
async def signed_in(
    request: Request,
    state: str = Query("", max_length=200),
    code: str = Query("", max_length=4000),
    error: str | None = Query(None, max_length=200),
):
    console = request.app.state.console
    if error or not code:
        return _page(
            request,
            "problem.html",
            400,
            title="Đăng nhập không thành công",
            reason=f"Máy chủ định danh trả lời: {error or 'không có mã xác thực'}.",
        )
    try:
        session, next_path = await console.sessions.finish(state, code, request.cookies.get(SIGN_IN_COOKIE))
    except SignInFailed as exc:
        return _page(request, "problem.html", 400, title="Đăng nhập không thành công", reason=str(exc))
    response = RedirectResponse(next_path, status_code=303)
    response.delete_cookie(SIGN_IN_COOKIE, path="/auth/callback")
    response.set_cookie(
        COOKIE, session.id, httponly=True, samesite="lax", path="/", secure=request.url.scheme == "https"
    )
    return response


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request):
    await request.app.state.console.sessions.end(request.cookies.get(COOKIE))
    response = RedirectResponse("/signed-out", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/signed-out", include_in_schema=False)
async def signed_out(request: Request):
    return _page(request, "signed_out.html")


# ---------------------------------------------------------------- the province overview


async def _overview_context(request: Request, start: date | None, end: date | None, area: str | None = None) -> dict:
    console = request.app.state.console
    now = console.clock.now()
    today = now.astimezone(LOCAL_TZ).date()
    first, last = start or today, end or start or today
    if last < first or (last - first).days >= PERIOD_MAX_DAYS:
        return {
            "period_error": f"Khoảng thời gian phải từ 1 đến {PERIOD_MAX_DAYS} ngày, ngày đầu không sau ngày cuối.",
            "first": first,
            "last": last,
        }
    period = (datetime.combine(first, time(), LOCAL_TZ), datetime.combine(last + timedelta(days=1), time(), LOCAL_TZ))
    params = {"from": period[0].isoformat(), "to": period[1].isoformat()}
    if area:
        params["area"] = area
    report = await console.platform.get("intake", "/v1/reports", _token(request), **params)
    context = {
        "first": first,
        "last": last,
        "now": now,
        "report": report,
        "is_today": first == last == today,
        "asked_area": area or "",
    }
    if report.ok:
        body = report.body
        names = {a.code: a.name for a in console.reference.catalogue.agencies.values()}
        context.update(
            area=body.get("area"),
            area_name=names.get(body.get("area") or "", "Toàn tỉnh"),
            total=views.figures(body["total"]),
            levels=[
                {**views.figures(lv), "name": views.LEVEL_VI.get(lv["level"], lv["level"])} for lv in body["levels"]
            ],
            agencies=sorted(
                (views.figures(a) for a in body["agencies"]),
                key=lambda a: (a["own_on_time_rate"] is None, a["own_on_time_rate"] or 0),
            ),
            indicators=scorecard_766(body["total"], body["catalogue"]),
            trend=views.trend_chart(body["trend"]),
            late=views.late_rows(body["late"], names),
            late_total=body["late_total"],
        )
    return context


@router.get("/", response_class=HTMLResponse, summary="The province overview")
async def overview(
    request: Request,
    start: date | None = Query(None, alias="from", description="First day (YYYY-MM-DD); default today"),
    end: date | None = Query(None, alias="to", description="Last day, at most 92 days after the first"),
    area: str | None = Query(None, min_length=1, max_length=35, description="An agency's area (default: the caller's)"),
):
    return _page(request, "overview.html", **await _overview_context(request, start, end, area))


@router.get("/overview/live", response_class=HTMLResponse, summary="The overview's figures, refreshed by the page")
async def overview_live(
    request: Request,
    start: date | None = Query(None, alias="from"),
    end: date | None = Query(None, alias="to"),
    area: str | None = Query(None, min_length=1, max_length=35),
):
    return _page(request, "overview_figures.html", **await _overview_context(request, start, end, area))


class ExportFormat(str, Enum):
    xlsx = "xlsx"
    csv = "csv"


@router.get("/reports/export", summary="The overview's report as .xlsx or CSV")
async def export_report(
    request: Request,
    start: date = Query(..., alias="from"),
    end: date = Query(..., alias="to"),
    area: str | None = Query(None, min_length=1, max_length=35),
    format: ExportFormat = Query(ExportFormat.xlsx),
):
    """Streamed from intake with the person's own token: the file holds what they may see."""
    if end < start or (end - start).days >= 3660:
        return _page(
            request,
            "problem.html",
            422,
            title="Khoảng thời gian không hợp lệ",
            reason="Ngày cuối phải sau ngày đầu, trong vòng 10 năm.",
        )
    params = {
        "from": datetime.combine(start, time(), LOCAL_TZ).isoformat(),
        "to": datetime.combine(end + timedelta(days=1), time(), LOCAL_TZ).isoformat(),
        "format": format.value,
        **({"area": area} if area else {}),
    }
    return await request.app.state.console.platform.stream(
        "intake", f"/v1/reports/export?{urlencode(params)}", _token(request)
    )


# ---------------------------------------------------------------- public pages

RATINGS_VI = (
    ("very_satisfied", "Rất hài lòng"),
    ("satisfied", "Hài lòng"),
    ("dissatisfied", "Không hài lòng"),
)


class Rating(str, Enum):
    very_satisfied = "very_satisfied"
    satisfied = "satisfied"
    dissatisfied = "dissatisfied"


ONLINE_VI = {"full": "toàn trình", "partial": "một phần", "none": "chưa cung cấp"}


@router.get("/danh-gia", response_class=HTMLResponse, summary="A citizen rates the handling of their dossier")
async def rating_form(request: Request, ma: str = Query("", max_length=60, description="The dossier code")):
    """The page the result's message links to: public, the slip's lookup key proves the dossier."""
    return _page(request, "rating.html", code=ma, choices=RATINGS_VI, chosen=None, comment="", problem=None)


@router.post("/danh-gia", response_class=HTMLResponse, summary="Send a citizen's rating to intake")
async def rate(
    request: Request,
    code: Annotated[str, Form(min_length=1, max_length=60)],
    key: Annotated[str, Form(min_length=1, max_length=16)],
    rating: Annotated[Rating, Form()],
    comment: Annotated[str, Form(max_length=500)] = "",
):
    body = {"key": key, "rating": rating.value, **({"comment": comment} if comment.strip() else {})}
    answer = await request.app.state.console.platform.call(
        "POST", "intake", f"/v1/lookup/{quote(code.strip(), safe='')}/rating", None, json=body
    )
    if answer.ok:
        return _page(request, "rating.html", 201, rated=answer.body)
    problem = {
        404: "Mã hồ sơ hoặc mã tra cứu không đúng.",
        409: "Hồ sơ chưa có kết quả, hoặc đã được đánh giá.",
        422: "Thông tin đánh giá chưa hợp lệ.",
    }.get(answer.status, answer.problem)
    return _page(
        request,
        "rating.html",
        answer.status or 502,
        code=code,
        choices=RATINGS_VI,
        chosen=rating.value,
        comment=comment,
        problem=problem,
    )


@router.get("/thu-tuc", response_class=HTMLResponse, summary="The published procedure catalogue")
async def catalogue(request: Request):
    answer = await request.app.state.console.platform.get("intake", "/v1/public/procedures", None)
    if not answer.ok:
        return _page(request, "catalogue.html", 502, problem=answer.problem)
    body = answer.body
    return _page(
        request,
        "catalogue.html",
        on=body["on"],
        procedures=body["procedures"],
        offered=body["offered_online"],
        online_vi=ONLINE_VI,
        level_vi=views.LEVEL_VI,
        fee_kind_vi=FEE_KIND_VI,
    )


# ---------------------------------------------------------------- a dossier


@router.get("/dossiers", summary="Find a dossier by its code")
async def find_dossier(request: Request, code: str = Query(..., min_length=1, max_length=60)):
    code = code.strip()
    return RedirectResponse(request.url_for("dossier_page", code=code), status_code=303)


@router.get("/dossiers/{code}", name="dossier_page", response_class=HTMLResponse, summary="A dossier's whole journey")
async def dossier_page(request: Request, code: DossierCode):
    console = request.app.state.console
    token = _token(request)
    intake, routing, timeline, notes, sync, files = await asyncio.gather(
        console.platform.get("intake", f"/v1/dossiers/{code}", token),
        console.platform.get("routing", f"/v1/dossiers/{code}", token),
        console.platform.get("routing", f"/v1/dossiers/{code}/timeline", token),
        console.platform.get("notify", f"/v1/dossiers/{code}/notifications", token),
        console.platform.get("intake", "/v1/portal-sync", token),
        console.platform.get("routing", f"/v1/dossiers/{code}/files", token),
    )
    shipments = None
    trace_id = None
    if intake.ok:
        trace_id = intake.body.get("trace_id")
        shipments = await console.platform.get("postal", f"/v1/dossiers/{intake.body['id']}/shipments", token)
    spans = await console.platform.spans(trace_id) if trace_id and "operator" in request.state.caller.roles else []
    portal_problems = [p for p in (sync.body or {}).get("failing", []) if p.get("code") == code] if sync.ok else None
    status = 404 if intake.status == 404 and routing.status == 404 else 200
    return _page(
        request,
        "dossier.html",
        status,
        code=code,
        intake=intake,
        routing=routing,
        timeline=timeline,
        files=files,
        notifications=notes,
        shipments=shipments,
        sync=sync,
        portal_problems=portal_problems,
        trace_id=trace_id,
        waterfall=views.waterfall(spans),
        now=console.clock.now(),
    )


@router.get("/dossiers/{code}/files/{sha256}", summary="Opens one of a dossier's files (streamed from routing)")
async def dossier_file(request: Request, code: DossierCode, sha256: FileHash):
    """Routing decides, with the person's own token, whether their agency is on the route, and
    records the opening on the dossier's timeline; the bytes pass through as they come."""
    return await request.app.state.console.platform.stream(
        "routing", f"/v1/dossiers/{code}/files/{sha256}", _token(request)
    )


# ---------------------------------------------------------------- operations


@router.get("/operations", response_class=HTMLResponse, summary="Services, lag, dead letters, backlogs")
async def operations(request: Request):
    console = request.app.state.console
    token = _token(request)
    health, status, letters, sync, shipments = await asyncio.gather(
        console.platform.each("/health", None),
        console.platform.each("/v1/operations", token),
        console.platform.each("/v1/operations/dead-letters", token),
        console.platform.get("intake", "/v1/portal-sync", token),
        console.platform.get("postal", "/v1/shipments/open", token),
    )
    return _page(
        request,
        "operations.html",
        services=SERVICES,
        health=health,
        status=status,
        letters=letters,
        sync=sync,
        shipments=shipments,
        third_party_vi={"population": "CSDL quốc gia về dân cư (qua nền tảng chia sẻ dữ liệu)"},
        redriven=request.query_params.get("redriven"),
        redriven_service=request.query_params.get("service"),
    )


@router.get(
    "/operations/dead-letters/{service}/redrive",
    response_class=HTMLResponse,
    summary="Asks the operator to confirm a re-drive",
)
async def confirm_redrive(request: Request, service: Service):
    letters = await request.app.state.console.platform.get(
        service.value, "/v1/operations/dead-letters", _token(request)
    )
    return _page(request, "confirm_redrive.html", service=service.value, letters=letters)


@router.post("/operations/dead-letters/{service}/redrive", summary="Re-drives a service's pending dead letters")
async def redrive(request: Request, service: Service, csrf: Annotated[str, Form(max_length=100)]):
    if csrf != request.state.session.csrf:
        raise AccessDenied(403, "the form is stale or not from this console; open the page again")
    answer = await request.app.state.console.platform.call(
        "POST", service.value, "/v1/operations/dead-letters/redrive", _token(request)
    )
    if not answer.ok:
        return _page(request, "problem.html", 502, title="Không gửi lại được", reason=answer.problem)
    url = request.url_for("operations").include_query_params(redriven=answer.body["redriven"], service=service.value)
    return RedirectResponse(str(url) + "#dead-letters", status_code=303)


# ---------------------------------------------------------------- an agency's lists


@router.get("/agencies", summary="The signed-in person's own agency")
async def my_agency(request: Request):
    caller = request.state.caller
    if caller.agency:
        return RedirectResponse(request.url_for("agency_page", agency_code=caller.agency), status_code=303)
    agencies = request.app.state.console.reference.catalogue.agencies
    return _page(request, "agencies.html", agencies=sorted(agencies.values(), key=lambda a: a.code))


@router.get(
    "/agencies/{agency_code}",
    name="agency_page",
    response_class=HTMLResponse,
    summary="An agency's dossiers at risk and overdue, most late first",
)
async def agency_page(request: Request, agency_code: AgencyCode):
    console = request.app.state.console
    queue, incoming = await asyncio.gather(
        console.platform.get("routing", f"/v1/agencies/{agency_code}/dossiers", _token(request)),
        console.platform.get("documents", f"/v1/agencies/{agency_code}/documents", _token(request), box="incoming"),
    )
    agency = console.reference.catalogue.agencies.get(agency_code)
    now = console.clock.now()
    lists = views.work_list(queue.body, now, console.reference.calendar) if queue.ok else None
    return _page(
        request,
        "agency.html",
        agency_code=agency_code,
        agency=agency,
        queue=queue,
        lists=lists,
        now=now,
        incoming=incoming,
    )
