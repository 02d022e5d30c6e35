"""Checking an official document's signatures on arrival (pyHanko and pyhanko-certvalidator).

A document is accepted only when, in this order:
- it is a PDF that pyHanko can read, with at least one signature;
- it carries a personal signature (ký số cá nhân) and an agency's signature (ký số cơ quan),
  told apart by their certificates' policies;
- the agency's signature is the last and covers the whole file: nothing was changed after it;
  between an earlier signature and the next, nothing but the signing itself was added;
- every signature is intact (the signed bytes are what was signed) and cryptographically valid;
- every signer's certificate chains to a trusted root, was valid at the moment of checking
  (the platform's clock) and is not revoked in the CRLs given (revocation is hard-fail: no
  answer is a refusal);
- the agency's certificate names the sending agency, and so does every personal certificate
  (the official who signed belongs to the agency that sends).

Each failure is one ``Refused`` with the exact reason, in words an operator can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from io import BytesIO

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

PERSON_POLICY = "2.999.84.1.1"
AGENCY_POLICY = "2.999.84.1.2"


class Refused(Exception):
    """The document cannot be received; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Signature:
    kind: str  # person | agency
    field: str
    signer: str  # the certificate's common name
    agency: str | None  # its organisational unit: the agency code
    serial: str
    signed_at: datetime | None  # as the signer claims it


@dataclass(frozen=True)
class Trust:
    """What a receiver trusts: the root(s), the CAs between, and current CRLs."""

    roots: tuple[asn1_x509.Certificate, ...]
    intermediates: tuple[asn1_x509.Certificate, ...]
    crls: tuple[bytes, ...]

    @classmethod
    def from_pem(cls, roots: list[bytes], intermediates: list[bytes], crls: list[bytes]) -> "Trust":
        def certs(pems):
            return tuple(asn1_x509.Certificate.load(asn1_pem.unarmor(p)[2] if asn1_pem.detect(p) else p) for p in pems)

        return cls(certs(roots), certs(intermediates), tuple(crls))

    def context(self, moment: datetime) -> ValidationContext:
        # every certificate below the root must be checked against its CA's CRL, and the CRLs
        # are the ones given: nothing is fetched, a missing CRL is a refusal
        crl_required = RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
            intermediate_ca_cert_rule=RevocationCheckingRule.CRL_REQUIRED,
        )
        return ValidationContext(
            trust_roots=list(self.roots),
            other_certs=list(self.intermediates),
            crls=list(self.crls),
            moment=moment,
            allow_fetching=False,
            revinfo_policy=CertRevTrustPolicy(crl_required),
        )


def _kind(cert: asn1_x509.Certificate) -> str | None:
    policies = cert.certificate_policies_value
    oids = {p["policy_identifier"].dotted for p in policies} if policies is not None else set()
    return "agency" if AGENCY_POLICY in oids else "person" if PERSON_POLICY in oids else None


def _subject(cert: asn1_x509.Certificate, field: str) -> str | None:
    return cert.subject.native.get(field)


async def verify(pdf: bytes, trust: Trust, moment: datetime, sender_agency: str) -> list[Signature]:
    """The document's signatures, person first, when it may be received; else ``Refused``."""
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        embedded = reader.embedded_signatures
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise Refused(f"not a readable PDF: {exc}") from None
    if not embedded:
        raise Refused("the document is not signed")
    found: list[Signature] = []
    for sig in embedded:
        cert = sig.signer_cert
        kind = _kind(cert)
        name = _subject(cert, "common_name") or "?"
        if kind is None:
            raise Refused(
                f"signature {sig.field_name!r} ({name}): the certificate is neither a personal nor an agency certificate"
            )
        found.append(
            Signature(
                kind,
                sig.field_name,
                name,
                _subject(cert, "organizational_unit_name"),
                str(cert.serial_number),
                sig.self_reported_timestamp,
            )
        )
    kinds = [s.kind for s in found]
    if "person" not in kinds:
        raise Refused("the personal signature (ký số cá nhân) is missing: only the agency signed")
    if "agency" not in kinds:
        raise Refused("the agency's signature (ký số cơ quan) is missing: only a person signed")
    if kinds[-1] != "agency":
        raise Refused("the agency's signature must be the last one")
    for sig, seen in zip(embedded, found):
        status = await async_validate_pdf_signature(
            sig, trust.context(moment), key_usage_settings=KeyUsageConstraints(key_usage={"non_repudiation"})
        )
        who = f"the {seen.kind} signature of {seen.signer}"
        if not status.intact:
            raise Refused(f"{who}: the signed content was changed after signing (digest mismatch)")
        if not status.valid:
            raise Refused(f"{who}: the signature value is not valid")
        if not status.trusted:
            raise Refused(f"{who}: {_trust_problem(status)}")
        if sig is embedded[-1] and status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
            raise Refused(f"{who}: the document was changed after the last signature")
        if sig is not embedded[-1] and (
            status.modification_level is None or status.modification_level > ModificationLevel.FORM_FILLING
        ):
            # what came after an earlier signature may only be signing (a field filled with
            # a signature), never a change of content the earlier signer did not see
            raise Refused(f"{who}: the document was changed after this signature, before the next one")
    agency = found[-1]
    if agency.agency != sender_agency:
        raise Refused(f"the agency's signature is {agency.agency or 'no agency'}'s, not the sender {sender_agency}'s")
    for person in (s for s in found if s.kind == "person"):
        if person.agency != sender_agency:
            raise Refused(
                f"the personal signature is by {person.signer} of {person.agency or 'no agency'}, "
                f"not an official of the sender {sender_agency}"
            )
    return found


# certvalidator's verdicts (ETSI EN 319 102-1 sub-indications), in an operator's words
TRUST_PROBLEMS = {
    "REVOKED": "the certificate is revoked",
    "REVOKED_NO_POE": "the certificate is revoked",
    "REVOKED_CA_NO_POE": "a CA certificate in the chain is revoked",
    "OUT_OF_BOUNDS_NO_POE": "the certificate is not valid at this moment (expired or not yet valid)",
    "OUT_OF_BOUNDS_NOT_REVOKED": "the certificate is not valid at this moment (expired or not yet valid)",
    "EXPIRED": "the certificate has expired",
    "NOT_YET_VALID": "the certificate is not valid yet",
    "NO_CERTIFICATE_CHAIN_FOUND": "the certificate does not chain to a trusted root",
    "TRY_LATER": "no current revocation list (CRL) for the certificate",
    "REVOCATION_OUT_OF_BOUNDS_NO_POE": "no current revocation list (CRL) for the certificate",
    # certvalidator's catch-all: with the CRLs required, most often a CRL is missing or stale,
    # else a CA certificate of the chain is out of its validity
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": "the chain cannot be validated: no current CRL from its CA, "
    "or a CA certificate not valid at this moment",
}


def _trust_problem(status: PdfSignatureStatus) -> str:
    indication = getattr(status, "trust_problem_indic", None)
    name = getattr(indication, "name", str(indication))
    return TRUST_PROBLEMS.get(name, f"the certificate is not trusted ({name})")
