"""Who produced an event, proven: each event type has one owner, the service whose use case
emits it, and every event is signed by its producer (Ed25519, ``cryptography``), so a
consumer can tell a routing decision from one another service wrote into the same topic.

Kafka's ACLs say who may write to a topic, not what: every dossier service writes the dossier
topic (its events of one dossier share a partition, in order), so the topic alone cannot stop
notify from publishing ``dossier.resolved``. Here the producer signs the event's identity and
body (``ce_id``, ``ce_type``, ``ce_source``, ``ce_subject`` and the data, not the trace
context, which the relay renews); a consumer refuses, to its dead-letter topic, an event whose
type is not its source's to emit, or whose signature is missing or not the owner's.

Keys: ``LGSP_EVENT_SIGNING_KEY`` (a service's own 32-byte Ed25519 seed, base64; a secret) and
``LGSP_EVENT_PUBLIC_KEYS`` (``service:base64,…``, every producer's public key). On the local
stack both come from the service names, public like every local secret; elsewhere both are
required.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.events import (
    DocumentSent,
    DocumentStatusChanged,
    DocumentViewOverdue,
    DossierApologised,
    DossierAssigned,
    DossierAtRisk,
    DossierFileOpened,
    DossierIdentityChecked,
    DossierOverdue,
    DossierReceived,
    DossierRefused,
    DossierResolved,
    DossierResumed,
    DossierReturned,
    DossierStepAccepted,
    DossierStepOverdue,
    DossierStopped,
    DossierSupplemented,
    DossierSupplementRequested,
    DossierTransferred,
    DossierWithdrawn,
    Envelope,
    EventData,
    PickupRequested,
    ShipmentBooked,
    ShipmentProgressed,
)

SIGNATURE_HEADER = "lgsp_signature"

# The services that emit each event type: one, except the opening of a dossier's file, which
# each service that serves the files records (intake to portals, routing to agencies).
PRODUCED_BY: dict[str, tuple[type[EventData], ...]] = {
    "intake": (
        DossierReceived,
        DossierRefused,
        DossierSupplemented,
        PickupRequested,
        DossierFileOpened,
        DossierIdentityChecked,
        DossierWithdrawn,  # before payment, when routing does not have the dossier yet
    ),
    "routing": (
        DossierFileOpened,
        DossierAssigned,
        DossierTransferred,
        DossierStepAccepted,
        DossierSupplementRequested,
        DossierResumed,
        DossierResolved,
        DossierReturned,
        DossierWithdrawn,
        DossierStopped,
        DossierAtRisk,
        DossierStepOverdue,
        DossierOverdue,
        DossierApologised,
    ),
    "postal": (ShipmentBooked, ShipmentProgressed),
    "documents": (DocumentSent, DocumentStatusChanged, DocumentViewOverdue),
}
OWNERS: dict[str, tuple[str, ...]] = {
    t: tuple(service for service, classes in PRODUCED_BY.items() if any(c.ce_type == t for c in classes))
    for t in {c.ce_type for classes in PRODUCED_BY.values() for c in classes}
}
PRODUCERS = tuple(PRODUCED_BY)


def source_of(service: str) -> str:
    return f"/lgsp/{service}"


def local_seed(service: str) -> bytes:
    """The local stack's public signing seed of a service (never valid elsewhere)."""
    return hashlib.sha256(f"lgsp-local-event-key:{service}".encode()).digest()


def public_key_text(seed: bytes) -> str:
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def local_public_keys() -> str:
    return ",".join(f"{s}:{public_key_text(local_seed(s))}" for s in PRODUCERS)


def _signed_bytes(envelope: Envelope) -> bytes:
    head = "\n".join((envelope.id, envelope.type, envelope.source, envelope.subject or ""))
    return head.encode("utf-8") + b"\n" + envelope.data


class Provenance:
    """Signs this service's events and checks where the consumed ones come from."""

    def __init__(self, service: str, seed: bytes | None, public_keys: str) -> None:
        self.service = service
        self._key = Ed25519PrivateKey.from_private_bytes(seed) if seed is not None else None
        self._public: dict[str, Ed25519PublicKey] = {}
        for item in filter(None, (p.strip() for p in public_keys.split(","))):
            name, _, text = item.partition(":")
            try:
                self._public[name] = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
            except (ValueError, binascii.Error) as exc:
                raise ValueError(
                    f"LGSP_EVENT_PUBLIC_KEYS: the key of {name!r} is not a base64 Ed25519 public key"
                ) from exc
        if missing := [p for p in PRODUCERS if p not in self._public]:
            raise ValueError(f"LGSP_EVENT_PUBLIC_KEYS has no key for {', '.join(missing)}")

    @classmethod
    def local(cls, service: str) -> "Provenance":
        return cls(service, local_seed(service), local_public_keys())

    def signature(self, envelope: Envelope) -> tuple[str, bytes]:
        """The header that signs ``envelope`` as this service."""
        if self._key is None:
            raise RuntimeError(f"{self.service} has no event signing key")
        return SIGNATURE_HEADER, base64.b64encode(self._key.sign(_signed_bytes(envelope)))

    def refusal(self, envelope: Envelope) -> str | None:
        """Why the event may not be believed, or None: its type is its source's to emit and
        the owner signed it."""
        owners = OWNERS.get(envelope.type)
        if owners is None:
            return f"no service of the platform emits {envelope.type}"
        owner = next((o for o in owners if envelope.source == source_of(o)), None)
        if owner is None:
            return f"{envelope.type} is {' or '.join(owners)}'s to emit, not {envelope.source}'s"
        if not envelope.signature:
            return f"{envelope.type} from {owner} carries no signature"
        try:
            self._public[owner].verify(base64.b64decode(envelope.signature, validate=True), _signed_bytes(envelope))
        except (InvalidSignature, ValueError, binascii.Error):
            return f"{envelope.type} is not signed by {owner}"
        return None
