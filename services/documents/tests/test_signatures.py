"""An official document's two signatures, checked on arrival against the project's test PKI
(generated here, at a fixed moment): what is received, and the exact reason for what is not."""

from __future__ import annotations

import datetime as dt
from io import BytesIO

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from ops.pki import TestPki
from ops.signing import document_pdf, sign, sign_twice
from services.documents.signatures import Refused, Trust, verify

MOMENT = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.timezone.utc)
COMMUNE, DISTRICT = "000.21.12.H40", "000.00.12.H40"
TITLE = "Công văn về việc đề nghị cấp giấy phép xây dựng nhà ở riêng lẻ"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPki:
    return TestPki.create(
        tmp_path_factory.mktemp("pki"),
        MOMENT,
        {COMMUNE: "Ủy ban nhân dân xã Ninh Hải", DISTRICT: "Ủy ban nhân dân huyện Hoa Lư"},
    )


@pytest.fixture(scope="module")
def trust(pki) -> Trust:
    root, others, crls = pki.trust()
    return Trust.from_pem([root], others, crls)


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return document_pdf("123/UBND-VP", TITLE, ["Kinh gui: UBND huyen Hoa Lu", "V/v cap giay phep xay dung"])


async def refusal(signed: bytes, trust: Trust, sender: str = COMMUNE, moment: dt.datetime = MOMENT) -> str:
    with pytest.raises(Refused) as refused:
        await verify(signed, trust, moment, sender)
    return refused.value.reason


async def test_a_document_signed_by_its_official_then_its_agency_is_received(pki, trust, pdf):
    signed = await sign_twice(pdf, pki.credential(f"official-{COMMUNE}"), pki.credential(f"agency-{COMMUNE}"))
    signatures = await verify(signed, trust, MOMENT, COMMUNE)
    assert [(s.kind, s.agency) for s in signatures] == [("person", COMMUNE), ("agency", COMMUNE)]
    assert signatures[0].signer == "Cán bộ Ủy ban nhân dân xã Ninh Hải"  # diacritics from the certificate intact
    assert signatures[1].field == "KySoCoQuan"


async def test_one_signature_is_not_enough(pki, trust, pdf):
    person_only = await sign(pdf, pki.credential(f"official-{COMMUNE}"), "KySoCaNhan")
    assert "ký số cơ quan" in await refusal(person_only, trust)
    agency_only = await sign(pdf, pki.credential(f"agency-{COMMUNE}"), "KySoCoQuan")
    assert "ký số cá nhân" in await refusal(agency_only, trust)
    assert await refusal(pdf, trust) == "the document is not signed"


async def test_the_agency_signs_last(pki, trust, pdf):
    reversed_order = await sign(
        await sign(pdf, pki.credential(f"agency-{COMMUNE}"), "KySoCoQuan"),
        pki.credential(f"official-{COMMUNE}"),
        "KySoCaNhan",
    )
    assert await refusal(reversed_order, trust) == "the agency's signature must be the last one"


async def test_a_changed_document_is_refused(pki, trust, pdf):
    signed = await sign_twice(pdf, pki.credential(f"official-{COMMUNE}"), pki.credential(f"agency-{COMMUNE}"))
    tampered = signed.replace(b"Kinh gui", b"Kinh guI")  # one byte inside the signed range
    assert "changed after signing" in await refusal(tampered, trust)
    # an incremental update after the last signature: the signatures stay intact, the file does not
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    writer.set_info(generic.DictionaryObject({generic.NameObject("/Title"): generic.TextStringObject("Đã sửa")}))
    out = BytesIO()
    writer.write(out)
    assert "changed after the last signature" in await refusal(out.getvalue(), trust)
    assert (await refusal(b"%PDF-1.7 not really", trust)).startswith("not a readable PDF")


@pytest.mark.parametrize(
    "person, agency, reason",
    [
        ("revoked-official", f"agency-{COMMUNE}", "the certificate is revoked"),
        (
            "expired-official",
            f"agency-{COMMUNE}",
            "the certificate is not valid at this moment (expired or not yet valid)",
        ),
        (f"official-{COMMUNE}", "untrusted-agency", "the certificate does not chain to a trusted root"),
    ],
)
async def test_revoked_expired_and_untrusted_certificates_are_refused_by_name(pki, trust, pdf, person, agency, reason):
    signed = await sign_twice(pdf, pki.credential(person), pki.credential(agency))
    assert (await refusal(signed, trust)).endswith(reason)


async def test_without_the_crl_nothing_is_received(pki, trust, pdf):
    signed = await sign_twice(pdf, pki.credential(f"official-{COMMUNE}"), pki.credential(f"agency-{COMMUNE}"))
    no_crls = Trust(trust.roots, trust.intermediates, ())
    assert "no current CRL" in await refusal(signed, no_crls)


async def test_the_agency_signature_must_be_the_senders(pki, trust, pdf):
    signed = await sign_twice(pdf, pki.credential(f"official-{COMMUNE}"), pki.credential(f"agency-{COMMUNE}"))
    assert (
        await refusal(signed, trust, sender=DISTRICT)
        == f"the agency's signature is {COMMUNE}'s, not the sender {DISTRICT}'s"
    )


async def test_validity_is_judged_at_the_platforms_moment(pki, trust, pdf):
    signed = await sign_twice(pdf, pki.credential(f"official-{COMMUNE}"), pki.credential(f"agency-{COMMUNE}"))
    assert len(await verify(signed, trust, MOMENT + dt.timedelta(days=300), COMMUNE)) == 2
    after_next_update = MOMENT + dt.timedelta(days=366)  # the CRLs say when they are replaced: stale by then
    assert "revocation list (CRL)" in await refusal(signed, trust, moment=after_next_update)
    a_month_earlier = MOMENT - dt.timedelta(days=30)  # the CRL was not issued yet
    assert "CRL" in await refusal(signed, trust, moment=a_month_earlier)


async def test_the_personal_signer_must_be_an_official_of_the_sending_agency(pki, trust, pdf):
    """Another agency's official, then the sender's agency: it used to arrive."""
    signed = await sign_twice(pdf, pki.credential(f"official-{DISTRICT}"), pki.credential(f"agency-{COMMUNE}"))
    assert (
        await refusal(signed, trust)
        == f"the personal signature is by Cán bộ Ủy ban nhân dân huyện Hoa Lư of {DISTRICT}, not an official of the sender {COMMUNE}"
    )


async def test_a_change_between_the_two_signatures_is_refused(pki, trust, pdf):
    """The official signs; the text of the page is replaced; the agency signs the result. Both
    signatures are intact and the last covers the file: only the change between them tells."""
    person_signed = await sign(pdf, pki.credential(f"official-{COMMUNE}"), "KySoCaNhan")
    writer = IncrementalPdfFileWriter(BytesIO(person_signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    replaced = generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 760 Td (Noi dung khac) Tj ET")
    page[generic.NameObject("/Contents")] = writer.add_object(replaced)
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    signed = await sign(out.getvalue(), pki.credential(f"agency-{COMMUNE}"), "KySoCoQuan")
    assert await refusal(signed, trust) == (
        "the person signature of Cán bộ Ủy ban nhân dân xã Ninh Hải: "
        "the document was changed after this signature, before the next one"
    )
