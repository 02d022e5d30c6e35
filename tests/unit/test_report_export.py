"""The report's exports, read back: the .xlsx opens with the same figures as the report (one
row per agency, Vietnamese headers and names intact), the score card and every late dossier;
the CSV opens in a spreadsheet with its Vietnamese headers (UTF-8 with a byte-order mark)."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from services.intake import export, report
from shared.scorecard import scorecard_766
from tests.unit.test_report_known_month import END, HOA_LU, MONTH, NINH_HAI, NOW, REF, START


def test_the_xlsx_holds_the_reports_figures_the_score_card_and_the_late_dossiers():
    r = report.tally(MONTH, REF, START, END, NOW)
    book = load_workbook(io.BytesIO(export.to_xlsx(r)))
    sheet = book["Theo cơ quan"]
    rows = [list(row) for row in sheet.iter_rows(min_row=2, values_only=True)]
    head = rows[0]
    assert head[:3] == ["Mã cơ quan", "Tên cơ quan", "Cấp"] and "Giải quyết trễ hạn" in head
    by_code = {row[0]: dict(zip(head, row)) for row in rows[1:] if row[0]}
    assert set(by_code) == {a["agency_code"] for a in r["agencies"]}
    commune = by_code[NINH_HAI]
    assert commune["Tên cơ quan"] == "Ủy ban nhân dân xã Ninh Hải" and commune["Cấp"] == "Cấp xã"
    for field, header in export.HEADERS_VI.items():
        assert commune[header] == next(a for a in r["agencies"] if a["agency_code"] == NINH_HAI)[field], field
    assert by_code[HOA_LU]["Trong đó bước của cơ quan quá hạn"] == 1
    total = dict(zip(head, next(row for row in rows if row[1] == "Tổng cộng")))
    assert total["Tiếp nhận trong kỳ"] == r["total"]["received"] == 5
    assert total["Điểm Bộ chỉ số 766"] == round(sum(g["score"] for g in scorecard_766(r["total"], r["catalogue"])), 1)

    card = [list(row) for row in book["Bộ chỉ số 766"].iter_rows(min_row=2, values_only=True)]
    sums = {row[0]: row[4] for row in card if row[1] == "Cộng nhóm"}
    assert list(sums.values()) == [g["score"] for g in scorecard_766(r["total"], r["catalogue"])]
    late = [list(row) for row in book["Hồ sơ trễ hạn"].iter_rows(min_row=2, values_only=True)]
    assert [row[0] for row in late] == ["A", "C"]
    assert "000.00.12.H40 (bước 2: bước 1, trễ 2400 phút)" in late[0][7] and late[0][6] == 64 * 60


def test_the_csv_has_one_row_per_agency_with_vietnamese_headers():
    r = report.tally(MONTH, REF, START, END, NOW)
    data = export.to_csv(r)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Mã cơ quan", "Tên cơ quan", "Cấp"]
    agencies = [row for row in rows[1:] if row[0]]
    assert [row[0] for row in agencies] == [a["agency_code"] for a in r["agencies"]]
    commune = dict(zip(rows[0], next(row for row in agencies if row[0] == NINH_HAI)))
    assert commune["Tiếp nhận trong kỳ"] == "3" and commune["Giải quyết đúng hạn"] == "1"
    assert (
        commune["Trong đó bước của cơ quan quá hạn"] == "1" and commune["Tên cơ quan"] == "Ủy ban nhân dân xã Ninh Hải"
    )
