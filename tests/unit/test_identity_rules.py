"""Identity's pure rules: tree shape, dealer fields, divisions, derived tags, audience
expressions, scope, import rows. No I/O."""

from __future__ import annotations

import pytest

from services.identity.domain.audience import DealerFacts, Node, compile_expression
from services.identity.domain.dealer_import import map_header, parse_row
from services.identity.domain.org import (
    DealerFields,
    dealer_violations,
    derived_tags,
    home_city,
    tree_violations,
)
from services.identity.domain.org import Node as OrgNode
from services.identity.domain.rules import Role, Tier, password_violations, scope_for
from shared import divisions
from shared.errors import InvalidArgument
from tests.world import credit_code


def tree() -> dict[str, OrgNode]:
    units = [OrgNode("hq", "hq"), OrgNode("east", "region", "hq"),
             OrgNode("shanghai", "region", "east"),
             OrgNode("p", "dealer", "east", Tier.PLATFORM),
             OrgNode("d1", "dealer", "east", Tier.ONE),
             OrgNode("sub", "dealer", "east", Tier.TWO, "p")]
    return {u.id: u for u in units}


def fields(**changes) -> DealerFields:
    values = dict(name="上海经销商", credit_code=credit_code(1), tier=Tier.ONE,
                  division_codes=("310000",), product_lines=("A系列",))
    values.update(changes)
    return DealerFields(**values)


def test_a_region_under_its_own_descendant_is_a_cycle():
    problems = tree_violations(OrgNode("east", "region", "shanghai"), tree())
    assert [p.field for p in problems] == ["parent_id"]
    assert "cycle" in problems[0].description


def test_a_region_cannot_be_its_own_parent():
    problems = tree_violations(OrgNode("east", "region", "east"), tree())
    assert "cycle" in problems[0].description


def test_a_dealer_belongs_to_a_region():
    problems = tree_violations(OrgNode("x", "dealer", "hq", Tier.ONE), tree())
    assert problems[0].field == "parent_id"


def test_a_sub_dealer_parent_must_be_a_platform_dealer():
    problems = tree_violations(OrgNode("x", "dealer", "east", Tier.TWO, "d1"), tree())
    assert [p.field for p in problems] == ["platform_dealer_id"]
    assert "平台商" in problems[0].description


def test_sub_dealer_chains_and_self_reference_are_refused():
    assert tree_violations(OrgNode("x", "dealer", "east", Tier.TWO, "sub"), tree())
    assert tree_violations(OrgNode("p", "dealer", "east", Tier.PLATFORM, "p"), tree())


def test_a_platform_dealer_with_sub_dealers_keeps_its_tier():
    problems = tree_violations(OrgNode("p", "dealer", "east", Tier.ONE), tree())
    assert [p.field for p in problems] == ["tier"]


def test_a_valid_sub_dealer_passes():
    assert tree_violations(OrgNode("x", "dealer", "east", Tier.TWO, "p"), tree()) == []


def test_dealer_fields_name_each_bad_field():
    assert dealer_violations(fields()) == []
    bad = dealer_violations(fields(credit_code="91310000MA1000001X", division_codes=("999999",
                                                                                       "310000")))
    assert [p.field for p in bad] == ["credit_code", "division_codes[0]"]
    assert [p.field for p in dealer_violations(fields(product_lines=()))] == ["product_lines"]
    assert [p.field for p in dealer_violations(fields(city_code="123456"))] == ["city_code"]


def test_divisions_come_from_the_bundled_gb_t_2260_table():
    assert divisions.is_known("310000") and divisions.is_known("440305")
    assert not divisions.is_known("310099") and not divisions.is_known("31000")
    assert divisions.city_name("310101") == "上海"
    assert divisions.city_name("440305") == "深圳"
    assert divisions.contains("440000", "440305") and not divisions.contains("440300", "440105")


def test_derived_tags_one_per_product_line():
    assert derived_tags("华东", home_city(["310000"]), Tier.ONE, ["A系列", "B系列"]) == [
        "华东-上海-一级-A系列", "华东-上海-一级-B系列"]
    assert derived_tags("华南", "440305", Tier.PLATFORM, ["A系列"]) == ["华南-深圳-平台商-A系列"]


def facts(**changes) -> DealerFacts:
    values = dict(id="d", region_code="east", tier=Tier.ONE, product_lines=frozenset({"A系列"}),
                  division_codes=("310000",), tags=frozenset({"华东-上海-一级-A系列", "VIP"}))
    values.update(changes)
    return DealerFacts(**values)


def test_audience_and_or_not():
    expression = Node("all", (
        Node("any", (Node("term", kind="tag", value="华东-上海-一级-A系列"),
                     Node("term", kind="region_code", value="south"))),
        Node("not", (Node("term", kind="tier", value=Tier.TWO),)),
    ))
    predicate = compile_expression(expression)
    assert predicate(facts())
    assert not predicate(facts(tier=Tier.TWO))
    assert predicate(facts(tags=frozenset(), region_code="south"))
    assert not predicate(facts(tags=frozenset()))
    assert compile_expression(Node("term", kind="tag_prefix", value="华东-上海-"))(facts())
    assert compile_expression(Node("term", kind="division_code", value="310101"))(facts())


def test_audience_errors_name_the_path():
    with pytest.raises(InvalidArgument) as caught:
        compile_expression(Node("all", (Node("term", kind="division_code", value="999999"),)))
    assert caught.value.violations[0].field == "expression.all_of[0].term.division_code"
    with pytest.raises(InvalidArgument):
        compile_expression(Node("any", ()))


def test_scope_per_role():
    everyone = scope_for(frozenset({Role.FINANCE}), "", frozenset(), frozenset(), frozenset())
    assert everyone.all_dealers
    staff = scope_for(frozenset({Role.DEALER_SALES}), "p", frozenset(), frozenset(),
                      frozenset({"sub"}))
    assert staff.dealer_ids == {"p", "sub"} and not staff.all_dealers
    manager = scope_for(frozenset({Role.CHANNEL_MANAGER}), "", frozenset({"d1"}), frozenset(),
                        frozenset())
    assert manager.dealer_ids == {"d1"}
    region = scope_for(frozenset({Role.REGION_MANAGER}), "", frozenset(), frozenset({"a", "b"}),
                       frozenset())
    assert region.dealer_ids == {"a", "b"}
    nobody = scope_for(frozenset({Role.DEALER_SALES}), "", frozenset(), frozenset(), frozenset())
    assert nobody.dealer_ids == frozenset()


def test_erp_is_narrow():
    erp = frozenset({Role.ERP})
    assert scope_for(erp, "", frozenset(), frozenset(), frozenset(), "shipment.record").all_dealers
    denied = scope_for(erp, "", frozenset(), frozenset(), frozenset(), "registration.approve")
    assert not denied.all_dealers and not denied.dealer_ids


def test_weak_passwords_are_refused():
    assert [v.field for v in password_violations("short", "bob")] == ["password", "password"]
    assert password_violations("alice-Passw0rd!", "alice")
    assert password_violations("Str0ng-Enough!", "bob") == []


def test_import_rows_report_every_bad_cell():
    index, missing = map_header(["名称", "统一社会信用代码", "等级", "区域", "行政区划", "产品线"])
    assert missing == []
    row, problems = parse_row(2, ["经销商", credit_code(1), "一级", "east", "310000;310101",
                                  "A系列,B系列"], index)
    assert problems == [] and row.fields.division_codes == ("310000", "310101")
    assert row.fields.product_lines == ("A系列", "B系列")
    row, problems = parse_row(3, ["", "123", "三级", "east", "999999", "A系列"], index)
    assert row is None
    assert {(p.column, p.code) for p in problems} == {
        ("name", "REQUIRED"), ("tier", "INVALID_TIER"), ("credit_code", "INVALID_CREDIT_CODE"),
        ("division_codes", "UNKNOWN_DIVISION")}
    assert all(p.row_number == 3 and p.message_zh and p.message_en for p in problems)
    _, missing = map_header(["name"])
    assert {p.column for p in missing} >= {"credit_code", "tier"}
