"""The CloudEvents contract: headers, bodies, versioned types, and what breaks it."""

import uuid
from datetime import datetime, timezone

import pytest

from shared.events import EVENT_TYPES, Applicant, ContractError, DossierReceived, Envelope

APPLICANT = Applicant(
    full_name="Nguyễn Thị Hồng Nhung",
    id_number="001203004567",
    phone="0912345678",
    address="Số 5, phố Lê Lợi, phường Đông Thành, TP Ninh Bình",
)


def received() -> DossierReceived:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    return DossierReceived(
        dossier_id=uuid.uuid4(),
        dossier_code="000.00.12.H41-261123-0001",
        at=now,
        procedure_code="1.001193",
        procedure_name="Đăng ký khai sinh",
        agency_code="000.00.12.H41",
        channel="online",
        applicant=APPLICANT,
        result_delivery="postal",
        due_at=now,
    )


def test_binary_mode_round_trip_keeps_vietnamese_text():
    data = received()
    env = Envelope.new(data, "/lgsp/intake", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    headers = dict(env.headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"vn.lgsp.dossier.received.v1"
    assert headers["ce_subject"] == str(data.dossier_id).encode()
    assert headers["traceparent"].startswith(b"00-aaaa")
    assert env.key == str(data.dossier_id).encode()
    back = Envelope.from_record(env.headers(), env.data)
    parsed = back.parse()
    assert parsed == data
    assert parsed.applicant.full_name == "Nguyễn Thị Hồng Nhung"
    assert "Nguyễn".encode("utf-8") in env.data  # UTF-8 on the wire, not \\u escapes


def test_types_are_versioned_and_registered_once():
    assert all(t.startswith("vn.lgsp.") and t.rsplit(".", 1)[1].startswith("v") for t in EVENT_TYPES)
    with pytest.raises(ValueError):
        from shared.events import event_type

        event_type(DossierReceived)


@pytest.mark.parametrize("drop", ["ce_id", "ce_type", "ce_source", "ce_specversion"])
def test_missing_required_header_is_a_contract_error(drop):
    env = Envelope.new(received(), "/lgsp/intake")
    headers = [(k, v) for k, v in env.headers() if k != drop]
    with pytest.raises(ContractError, match=drop):
        Envelope.from_record(headers, env.data)


def test_bad_bodies_are_contract_errors_without_personal_data():
    env = Envelope.new(received(), "/lgsp/intake")
    with pytest.raises(ContractError, match="not JSON"):
        Envelope.from_record(env.headers(), b"{not json").parse()
    bad = env.data.replace(b'"001203004567"', b'"12345"')
    with pytest.raises(ContractError) as caught:
        Envelope.from_record(env.headers(), bad).parse()
    assert "applicant.id_number" in str(caught.value)
    assert "12345" not in str(caught.value)  # reasons name fields, never values


def test_unknown_type_and_spec_version_are_refused():
    env = Envelope.new(received(), "/lgsp/intake")
    headers = [(k, b"vn.lgsp.dossier.teleported.v9" if k == "ce_type" else v) for k, v in env.headers()]
    with pytest.raises(ContractError, match="unknown event type"):
        Envelope.from_record(headers, env.data).parse()
    headers = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in env.headers()]
    with pytest.raises(ContractError, match="specversion"):
        Envelope.from_record(headers, env.data)


def test_additive_fields_pass_through_within_a_version():
    env = Envelope.new(received(), "/lgsp/intake")
    extended = env.data[:-1] + b',"new_field":"ok"}'
    assert Envelope.from_record(env.headers(), extended).parse().dossier_code == "000.00.12.H41-261123-0001"
