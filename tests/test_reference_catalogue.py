"""The agency tree and procedure catalogue: both variants load, routes cross levels, and
inconsistent data is refused at start."""

import json
import shutil

import pytest

from shared.reference import catalogue as cat_mod
from shared.reference.catalogue import ReferenceError_, load_catalogue


@pytest.mark.parametrize(
    "variant, levels, min_crossing",
    [("three_level", ("province", "district", "commune"), 5), ("two_level", ("province", "commune"), 3)],
)
def test_both_variants_load_with_enough_procedures(variant, levels, min_crossing):
    c = load_catalogue(variant)
    assert c.levels == levels
    assert len(c.procedures) >= 15
    crossing = [p for p in c.procedures.values() if len({s.level for s in p.workflow}) > 1]
    assert len(crossing) >= min_crossing
    assert any("Đăng ký khai sinh" == p.name for p in c.procedures.values())


def test_commune_district_province_commune_route():
    c = load_catalogue("three_level")
    commune = "000.21.12.H40"  # Xã Ninh Hải, huyện Hoa Lư
    route = c.route(c.procedures["2.000286"], commune)
    assert [s.level for s in route] == ["commune", "district", "province", "province", "commune"]
    assert route[1].agency_code == "000.04.12.H40"  # the district's labour office of Hoa Lư
    assert c.agencies[route[1].agency_code].parent == "000.00.12.H40"
    assert route[-1].agency_code == commune and route[-1].kind == "return"


def test_same_procedure_routes_within_two_levels():
    c = load_catalogue("two_level")
    route = c.route(c.procedures["2.000286"], "000.00.21.H40")
    assert [s.level for s in route] == ["commune", "province", "province", "commune"]


def test_unknown_variant_is_refused():
    with pytest.raises(ReferenceError_, match="unknown reference variant"):
        load_catalogue("four_level")


def test_inconsistent_data_is_refused(tmp_path, monkeypatch):
    shutil.copytree(cat_mod.DATA_DIR / "three_level", tmp_path / "broken")
    procs = json.loads((tmp_path / "broken/procedures.json").read_text(encoding="utf-8"))
    procs["procedures"][0]["workflow"][0]["unit"] = "no-such-unit"
    procs["procedures"][1]["time_limit_days"] = 7
    (tmp_path / "broken/procedures.json").write_text(json.dumps(procs, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(cat_mod, "DATA_DIR", tmp_path)
    monkeypatch.setattr(cat_mod, "VARIANTS", ("broken",))
    with pytest.raises(ReferenceError_) as caught:
        load_catalogue("broken")
    assert "step days add up" in str(caught.value)
