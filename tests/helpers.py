"""Small helpers for tests: reading headers, and what the demo's clients already do."""

from __future__ import annotations

from ops.clients import (  # noqa: F401 - re-exported for tests
    APPLICANT,
    COMMUNE,
    RESULT,
    Agencies,
    documents_for,
    eventually,
    pay_fee_if_asked,
    platform_http,
    submission,
    supplement_documents,
)
from ops.identity import IDENTITIES  # noqa: F401
from ops.stack import StackConfig
from shared.kafka_access import KafkaAccess


def kafka_operator() -> KafkaAccess:
    """The operator's Kafka identity on the local stack, for tests that read whole topics or
    inject records (the services' own principals may not)."""
    return StackConfig.from_env().operator()


def header(record, name: str) -> str | None:
    for k, v in record.headers or ():
        if k == name:
            return v.decode("utf-8")
    return None


def signed(envelope, service: str):
    """``envelope`` signed as ``service`` with the local stack's key, as that service's outbox would."""
    from dataclasses import replace

    from shared.provenance import Provenance

    return replace(envelope, signature=Provenance.local(service).signature(envelope)[1].decode())
