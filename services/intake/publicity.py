"""The procedure catalogue as published to citizens, and what Decision 766's publicity and
online-service groups measure of it. Pure: the catalogue in, figures out."""

from __future__ import annotations

from collections.abc import Iterable

from services.intake.schemas import PublicComponent, PublicFeeLine, PublicProcedure, PublicStep
from shared.reference.catalogue import Procedure


def published(p: Procedure) -> PublicProcedure:
    return PublicProcedure(
        code=p.code,
        name=p.name,
        field=p.field,
        receiving_level=p.receiving_level,
        time_limit_days=float(p.time_limit_days),
        fee_vnd=p.fee_vnd,
        fees=None if p.fees is None else [PublicFeeLine(**line.model_dump()) for line in p.fees],
        components=[PublicComponent(code=c.code, name=c.name, required=c.required) for c in p.components],
        channels=list(p.channels),
        online=p.online_level,
        result_by_post=p.postal_result,
        steps=[PublicStep(name=s.name, level=s.level, days=float(s.days)) for s in p.workflow if s.kind != "return"],
        valid_from=p.valid_from,
        valid_until=p.valid_until,
    )


def in_full(p: Procedure) -> bool:
    """Published in full: everything a citizen needs is stated (components, time limit, how it
    can be done, steps, and the fee, 0 when free)."""
    return bool(p.name and p.components and p.channels and p.workflow and p.time_limit_days > 0) and (
        p.fee_vnd is not None
    )


def catalogue_figures(procedures: Iterable[Procedure]) -> dict[str, int]:
    """Of the procedures in force: how many, how many published in full, offered fully, partly,
    not online, how many are connected to the national population database."""
    listed = list(procedures)
    return {
        "procedures_in_force": len(listed),
        "published_in_full": sum(in_full(p) for p in listed),
        "offered_full_online": sum(p.online_level == "full" for p in listed),
        "offered_partly_online": sum(p.online_level == "partial" for p in listed),
        "offered_not_online": sum(p.online_level == "none" for p in listed),
        "population_connected": sum(p.population_check for p in listed),
        "fee_procedures": sum(bool(p.fee_vnd) for p in listed),
        # a procedure with a fee that can be submitted online is paid through the payment platform
        "fee_procedures_online": sum(bool(p.fee_vnd) and "online" in p.channels for p in listed),
    }
