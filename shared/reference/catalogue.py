"""The agency tree and the procedure catalogue: loaded from files, validated at start, and
the one place that turns a procedure's workflow into a route of concrete agencies."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

DATA_DIR = Path(__file__).parent / "data"
VARIANTS = tuple(sorted(p.name for p in DATA_DIR.iterdir() if p.is_dir()))
GOVERNMENT = "ubnd"  # the unit of the people's committee at each level


class ReferenceError_(ValueError):
    """Reference data that is inconsistent; the service refuses to start."""


class Agency(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(max_length=35)
    name: str
    level: str
    unit: str
    parent: str | None


class Component(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    name: str
    required: bool = True


class WorkflowStep(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    level: str
    unit: str = GOVERNMENT
    days: Decimal = Field(ge=0)
    kind: str = Field(pattern="^(handle|decide|return)$")


class FeeLine(BaseModel):
    """One line of a procedure's fee schedule: a fee (lệ phí, collected for a state act of
    administration) or a charge (phí, recovering the cost of a public service). The Law on
    Fees and Charges keeps them apart, and receipts name each."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str = Field(pattern="^(le_phi|phi)$")
    name: str = Field(min_length=1, max_length=300)
    amount_vnd: int = Field(ge=0, le=100_000_000)


FEE_KIND_VI = {"le_phi": "Lệ phí", "phi": "Phí"}


class Procedure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    name: str
    field: str
    receiving_level: str
    receiving_unit: str = GOVERNMENT
    time_limit_days: Decimal = Field(gt=0)
    components: tuple[Component, ...]
    channels: tuple[str, ...]
    postal_result: bool
    # A decision (quyết định) is an official document the deciding agency signs and sends
    # through the documents service; other results are papers the agency issues itself.
    result_kind: str = Field("paper", pattern="^(decision|paper)$")
    workflow: tuple[WorkflowStep, ...]
    # The fee schedule (lệ phí and phí lines): () when free; None when the catalogue does not state it
    fees: tuple[FeeLine, ...] | None = Field(None, max_length=10)
    # As the announcing decision publishes it (Decree 42/2022); None: judged by ``online_level``'s rule
    online: str | None = Field(None, pattern="^(full|partial|none)$")
    # Connected to the national population database: the applicant's identity is checked at receipt
    population_check: bool = False
    valid_from: date | None = None  # the day it starts to apply
    valid_until: date | None = None  # the last day it applies; after it the procedure is withdrawn

    @property
    def fee_vnd(self) -> int | None:
        """What the citizen pays in all, VND: 0 when free, None when not stated."""
        return None if self.fees is None else sum(line.amount_vnd for line in self.fees)

    @property
    def online_level(self) -> str:
        """Fully online (toàn trình, Decree 42/2022) when it can be submitted online and its
        result comes back online (a signed decision) or by public post; partly online when it
        can only be submitted online; else not online."""
        if self.online is not None:
            return self.online
        if "online" not in self.channels:
            return "none"
        return "full" if self.result_kind == "decision" or self.postal_result else "partial"

    def in_force(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    @model_validator(mode="after")
    def _consistent(self) -> "Procedure":
        if sum(s.days for s in self.workflow) != self.time_limit_days:
            raise ValueError(
                f"{self.code}: step days add up to {sum(s.days for s in self.workflow)}, not {self.time_limit_days}"
            )
        if not self.workflow or self.workflow[-1].kind != "return":
            raise ValueError(f"{self.code}: the last step must return the result")
        if not any(s.kind == "decide" for s in self.workflow):
            raise ValueError(f"{self.code}: no step decides the dossier")
        for d in self.time_limit_days, *(s.days for s in self.workflow):
            if (d * 2) % 1:
                raise ValueError(f"{self.code}: {d} is not a multiple of half a day")
        return self

    def required_components(self) -> list[Component]:
        return [c for c in self.components if c.required]


@dataclass(frozen=True)
class RouteStep:
    index: int
    name: str
    kind: str
    level: str
    agency_code: str
    days: Decimal


@dataclass
class Catalogue:
    variant: str
    levels: tuple[str, ...]
    agencies: dict[str, Agency]
    procedures: dict[str, Procedure]
    children: dict[str, list[Agency]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for a in self.agencies.values():
            if a.parent:
                self.children.setdefault(a.parent, []).append(a)

    def route(self, procedure: Procedure, receiving_agency: str) -> list[RouteStep]:
        """Concrete agencies for each workflow step, seen from the agency that received the dossier.

        A step at level L is done by the people's committee of the receiving agency's
        level-L ancestor, or by its unit named in the step. Raises LookupError when the
        tree has no such agency (the receiving agency cannot handle this procedure).
        """
        steps = []
        for i, step in enumerate(procedure.workflow):
            government = self._government_at(receiving_agency, step.level)
            if step.unit == GOVERNMENT:
                agency = government
            else:
                units = [c for c in self.children.get(government.code, []) if c.unit == step.unit]
                if not units:
                    raise LookupError(f"no '{step.unit}' unit under {government.code} for step '{step.name}'")
                agency = units[0]
            steps.append(RouteStep(i, step.name, step.kind, step.level, agency.code, step.days))
        return steps

    def _government_at(self, agency_code: str, level: str) -> Agency:
        node = self.agencies.get(agency_code)
        while node is not None:
            if node.level == level and node.unit == GOVERNMENT:
                return node
            node = self.agencies.get(node.parent) if node.parent else None
        raise LookupError(f"{agency_code} has no people's committee at level '{level}' above it")

    def area(self, agency_code: str) -> frozenset[str]:
        """The agency and every agency below it: what its manager oversees."""
        found, todo = set(), [agency_code]
        while todo:
            code = todo.pop()
            if code not in found:
                found.add(code)
                todo.extend(c.code for c in self.children.get(code, ()))
        return frozenset(found)

    def in_force(self, day: date) -> list[Procedure]:
        """The procedures that apply on ``day``: what the public catalogue lists and intake receives."""
        return [p for p in self.procedures.values() if p.in_force(day)]

    def level_of(self, agency_code: str) -> str:
        return self.agencies[agency_code].level


def load_catalogue(variant: str) -> Catalogue:
    if variant not in VARIANTS:
        raise ReferenceError_(f"unknown reference variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    folder = DATA_DIR / variant
    try:
        tree = json.loads((folder / "agencies.json").read_text(encoding="utf-8"))
        agencies = {a["code"]: Agency(**a) for a in tree["agencies"]}
        procedures = {
            p["code"]: Procedure(**p)
            for p in json.loads((folder / "procedures.json").read_text(encoding="utf-8"))["procedures"]
        }
    except (ValueError, KeyError) as exc:
        raise ReferenceError_(f"reference data {variant}: {exc}") from exc
    levels = tuple(tree["levels"])
    problems = []
    for a in agencies.values():
        if a.level not in levels:
            problems.append(f"agency {a.code}: unknown level {a.level}")
        if a.parent and a.parent not in agencies:
            problems.append(f"agency {a.code}: parent {a.parent} not in the tree")
    catalogue = Catalogue(variant, levels, agencies, procedures)
    for p in procedures.values():
        for s in p.workflow:
            if s.level not in levels:
                problems.append(f"procedure {p.code}: step '{s.name}' at unknown level {s.level}")
        receivers = [a for a in agencies.values() if a.level == p.receiving_level and a.unit == p.receiving_unit]
        if not receivers:
            problems.append(f"procedure {p.code}: no agency can receive it")
        for a in receivers:
            try:
                catalogue.route(p, a.code)
            except LookupError as exc:
                problems.append(f"procedure {p.code} from {a.code}: {exc}")
    if problems:
        raise ReferenceError_(f"reference data {variant} is inconsistent:\n  " + "\n  ".join(problems))
    return catalogue


@lru_cache(maxsize=None)
def catalogue_for(variant: str | None = None) -> Catalogue:
    return load_catalogue(variant or os.environ.get("LGSP_REFERENCE_VARIANT", "three_level"))
