"""The platform's services, listed once. Topics, Kafka rights, database roles, the process
runner, the fuzzer, the console and the command line all read this list.

Each service with data owns a database schema, a Kafka principal and consumer group, and a
dead-letter topic; the console owns no data and only reads the others' HTTP APIs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    port: int  # where it listens on a developer's machine (`lgsp demo`, `lgsp run`)
    consumes: tuple[str, ...]  # the topics it reads (names without the deployment prefix)
    summary: str


# In start order: consumers before the edge that feeds them.
SERVICES: tuple[Service, ...] = (
    Service(
        "routing",
        8082,
        ("dossier", "document"),
        "each dossier's workflow across agencies and levels, its deadlines and timeline",
    ),
    Service("postal", 8083, ("dossier",), "pickups and result deliveries by the public postal service (BCCI)"),
    Service("notify", 8084, ("dossier", "document"), "citizens' and officials' notifications (SMS, Zalo, e-mail)"),
    Service("intake", 8081, ("dossier",), "receipt of dossiers from portals and counters; the national portal's sync"),
    Service("documents", 8086, ("document",), "signed official documents between agencies and the national axis"),
)
NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
CONSOLE = Service("console", 8085, (), "the operators' and managers' web console (owns no data)")
BY_NAME: dict[str, Service] = {s.name: s for s in (*SERVICES, CONSOLE)}


def consuming(topic: str) -> tuple[str, ...]:
    """The services that read ``topic``."""
    return tuple(s.name for s in SERVICES if topic in s.consumes)
