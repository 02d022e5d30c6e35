"""What an agency's document software does before sending: lay out a PDF and sign it, first
with the signer's personal certificate, then with the agency's (``ký số cá nhân, ký số cơ
quan``), each signature a PAdES signature added by pyHanko as an incremental update."""

from __future__ import annotations

import asyncio
from io import BytesIO

from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from ops.pki import Credential


def _der(pem: bytes) -> bytes:
    return asn1_pem.unarmor(pem)[2] if asn1_pem.detect(pem) else pem


def document_pdf(number: str, title: str, body_lines: list[str]) -> bytes:
    """A one-page PDF: the text in Helvetica (ASCII), the Vietnamese title in the document's
    metadata (a PDF text string, Unicode intact)."""
    w = PdfFileWriter()
    w.set_info(generic.DictionaryObject({generic.NameObject("/Title"): generic.TextStringObject(title)}))
    font = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Font"),
            generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
            generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {generic.NameObject("/Font"): generic.DictionaryObject({generic.NameObject("/F1"): w.add_object(font)})}
    )
    lines = [number, *body_lines]
    text = " ".join(
        f"({line.encode('ascii', 'replace').decode().replace('(', '[').replace(')', ']')}) Tj T*" for line in lines
    )
    content = f"BT /F1 12 Tf 16 TL 72 760 Td {text} ET".encode()
    page = PageObject(
        contents=w.add_object(generic.StreamObject(stream_data=content)),
        media_box=generic.ArrayObject([generic.NumberObject(x) for x in (0, 0, 595, 842)]),
        resources=resources,
    )
    w.insert_page(page)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def _signer(credential: Credential) -> signers.SimpleSigner:
    cert = asn1_x509.Certificate.load(_der(credential.cert_pem))
    key = asn1_keys.PrivateKeyInfo.load(_der(credential.key_pem))
    chain = [asn1_x509.Certificate.load(_der(c)) for c in credential.chain_pem]
    return signers.SimpleSigner(
        signing_cert=cert, signing_key=key, cert_registry=SimpleCertificateStore.from_certs(chain)
    )


async def sign(pdf: bytes, credential: Credential, field_name: str) -> bytes:
    """``pdf`` with one more PAdES signature (an incremental update, earlier ones intact)."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
    )
    out = await signers.async_sign_pdf(
        writer, meta, signer=_signer(credential), new_field_spec=fields.SigFieldSpec(field_name, box=None)
    )
    return out.getvalue()


async def sign_twice(pdf: bytes, person: Credential, agency: Credential) -> bytes:
    """The signer's personal signature, then the agency's."""
    return await sign(await sign(pdf, person, "KySoCaNhan"), agency, "KySoCoQuan")


def sign_twice_sync(pdf: bytes, person: Credential, agency: Credential) -> bytes:
    return asyncio.run(sign_twice(pdf, person, agency))
