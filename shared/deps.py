"""What a route may ask for, as typed dependencies: the service's runtime (pool, outbox,
clock, settings), its reference data, and the caller the access policy let in. A route names
them in its signature (``rt: RuntimeDep``) instead of reaching into ``request.app.state``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from shared.access import Caller
from shared.events import Actor
from shared.reference import Reference
from shared.runtime import ServiceRuntime


def _runtime(request: Request) -> ServiceRuntime[Any]:
    return request.app.state.runtime


def _reference(request: Request) -> Reference:
    return request.app.state.reference


def _caller(request: Request) -> Caller:
    return request.state.caller  # set by the access policy before any route runs


# its settings are the service's own class (services/<name>/settings.py)
RuntimeDep = Annotated[ServiceRuntime[Any], Depends(_runtime)]
ReferenceDep = Annotated[Reference, Depends(_reference)]
CallerDep = Annotated[Caller, Depends(_caller)]


def actor_of(caller: Caller) -> Actor:
    """Who acted, from the access token alone: the person's name as the identity provider
    has it (or the connected system), and their account, so nothing in a body can name
    someone else."""
    return Actor(name=caller.display_name, title="", account=caller.username if caller.is_person else caller.client_id)
