from datetime import date, datetime, timezone

import pytest

from services.intake.domain import dossier_code, local_day


def test_dossier_code_follows_the_default_format():
    assert dossier_code("000.00.12.H41", date(2021, 8, 5), 1) == "000.00.12.H41-210805-0001"
    assert dossier_code("000.00.12.H41", date(2021, 8, 5), 9999).endswith("-9999")


@pytest.mark.parametrize("seq", [0, 10000])
def test_sequence_out_of_range_is_refused(seq):
    with pytest.raises(ValueError):
        dossier_code("000.00.12.H41", date(2021, 8, 5), seq)


def test_office_day_is_vietnam_local():
    # 18:30 UTC on the 4th is 01:30 on the 5th in Hà Nội
    assert local_day(datetime(2021, 8, 4, 18, 30, tzinfo=timezone.utc)) == date(2021, 8, 5)
