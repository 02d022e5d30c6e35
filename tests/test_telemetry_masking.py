"""Personal data is masked in log lines, whatever a caller passes."""

import logging

from shared.telemetry import mask_personal_data, setup_logging


def test_masks_id_numbers_phones_and_emails_but_not_codes():
    line = (
        "id 001203004567 phone 0912345678 or +84912345678 mail nhung.nguyen@example.vn code 000.00.12.H41-261123-0001"
    )
    masked = mask_personal_data(line)
    for secret in ("001203004567", "0912345678", "+84912345678", "nhung.nguyen@example.vn"):
        assert secret not in masked
    assert "000.00.12.H41-261123-0001" in masked


def test_log_records_are_masked(capsys):
    root = logging.getLogger()
    before = root.handlers[:], root.level
    setup_logging("masktest")
    try:
        logging.getLogger("masktest").warning("applicant %s phoned from %s", "001203004567", "0987654321")
        err = capsys.readouterr().err
    finally:  # the handler writes to this test's captured stderr, which closes after it
        root.handlers[:], _ = before
        root.setLevel(before[1])
    assert "001203004567" not in err and "0987654321" not in err
    assert "***id***" in err and "***phone***" in err
