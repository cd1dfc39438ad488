"""The customer master and the duplicate check: exact duplicates refused (credit code
anywhere, name or alias within a city), look-alikes reported, who holds a claim shown
only to those whose scope covers that dealer; edits and imports by HQ and managers."""

from __future__ import annotations

import pytest

from services.registration.domain.customers import CustomerInput, CustomerQuery, DuplicateQuery
from services.registration.domain.registrations import SubmitRegistration
from services.registration.usecases import aliases, customers, registrations
from shared.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    StaleVersion,
)
from shared.events.registration import CUSTOMER_CREATED, CUSTOMER_MERGED, CUSTOMER_UPDATED
from shared.names.matching import MatchKind, Verdict
from shared.pagination import PageRequest
from shared.tabular import read_table
from tests.service.registration.world import (
    DEALER_A,
    DEALER_B,
    HQ,
    MANAGER,
    ZHONGSHAN,
    A,
    hospital_code,
    run,
    world,
)

FIRST = CustomerInput(name="上海市第一人民医院", address="上海市虹口区海宁路100号",
                      credit_code=hospital_code(3), aliases=("市一医院",), departments=("眼科",))


async def create(deps, data: CustomerInput, who=HQ):
    return (await run(deps, customers.create_customer, data, who=who)).customer


async def check(deps, who=DEALER_B, **query):
    return await run(deps, customers.check_duplicates, DuplicateQuery(**query), who=who)


async def test_exact_duplicates_are_refused_naming_the_customer():
    deps, uow = await world()
    customer = await create(deps, FIRST)
    assert customer.normalized_name == "上海第一人民医院" and customer.city_code == "310100"
    assert uow.published_of(CUSTOMER_CREATED)[0].customer.id == customer.id
    with pytest.raises(AlreadyExists) as same_name:
        await create(deps, CustomerInput(name="上海市第1人民医院", address="上海市虹口区"))
    assert same_name.value.metadata == {"customer_id": customer.id,
                                        "match_kind": "MATCH_KIND_NORMALIZED_NAME"}
    with pytest.raises(AlreadyExists) as same_code:
        await create(deps, CustomerInput(name="另一个名字", address="上海市虹口区",
                                         credit_code=FIRST.credit_code))
    assert same_code.value.metadata["match_kind"] == "MATCH_KIND_CREDIT_CODE"
    # The same name in another city is another hospital.
    other_city = await create(deps, CustomerInput(name="第一人民医院",
                                                  address="江苏省苏州市姑苏区十梓街188号"))
    assert other_city.city_code == "320500"
    assert len(uow.customers.rows) == 2


async def test_the_check_finds_aliases_and_look_alikes_and_hides_who_holds_them():
    deps, _ = await world()
    customer = await create(deps, FIRST)
    alias = await check(deps, name="市一医院", division_code="310109")
    assert alias.verdict == Verdict.DUPLICATE
    assert (alias.candidates[0].customer.id, alias.candidates[0].kind) == (customer.id,
                                                                           MatchKind.ALIAS)
    held = await run(deps, registrations.submit_registration,
                     SubmitRegistration("A系列", new_customer=ZHONGSHAN), who=DEALER_A)
    look_alike = await check(deps, name="中山医院", address="上海市长宁区", product_line="A系列")
    assert look_alike.verdict == Verdict.POSSIBLE_DUPLICATE
    [candidate] = look_alike.candidates
    assert candidate.kind == MatchKind.FUZZY_NAME
    [claim] = candidate.claims
    assert (claim.registration_id, claim.dealer_id) == (held.registration.id, "")
    for viewer in (DEALER_A, MANAGER, HQ):
        seen = await check(deps, who=viewer, name="中山医院", address="上海市长宁区",
                           product_line="A系列")
        assert seen.candidates[0].claims[0].dealer_id == A
    # No product line asked: no claims.
    assert (await check(deps, name="中山医院", address="上海市长宁区")).candidates[0].claims == ()


async def test_a_new_name_is_answered_from_memory_without_the_database():
    deps, uow = await world()
    await create(deps, FIRST)
    entered = uow.entered
    answer = await check(deps, name="上海市同仁医院", address="上海市长宁区仙霞路1111号")
    assert (answer.verdict, answer.candidates) == (Verdict.NONE, ())
    assert (answer.normalized_name, answer.division_code) == ("上海同仁医院", "310105")
    assert uow.entered == entered
    with pytest.raises(InvalidArgument) as bad:
        await check(deps, name="（）")
    assert [v.field for v in bad.value.violations] == ["name"]
    with pytest.raises(InvalidArgument) as code:
        await check(deps, name="某医院", credit_code="123")
    assert [v.field for v in code.value.violations] == ["credit_code"]
    with pytest.raises(InvalidArgument) as division:
        await check(deps, name="某医院", division_code="999999")
    assert division.value.violations[0].field == "division_code"


async def test_hq_and_managers_edit_the_master():
    deps, uow = await world()
    customer = await create(deps, FIRST)
    other = await create(deps, CustomerInput(name="上海市第二人民医院", address="上海市虹口区"))
    # A dealer does not even see a customer it is not tied to.
    with pytest.raises(NotFound):
        await run(deps, customers.update_customer, customer.id, CustomerInput(grade="x"),
                  ["grade"], who=DEALER_A)
    with pytest.raises(InvalidArgument) as unknown:
        await run(deps, customers.update_customer, customer.id, CustomerInput(), ["colour"],
                  who=HQ)
    assert unknown.value.violations[0].field == "update_mask"
    deps.clock.advance(hours=1)
    updated = await run(deps, customers.update_customer, customer.id,
                        CustomerInput(division_code="310101", grade="三级甲等"),
                        ["division_code", "grade"], who=MANAGER)
    assert (updated.division_code, updated.division_overridden, updated.grade) == (
        "310101", True, "三级甲等")
    assert updated.updated_at == deps.clock.now() and updated.aliases == ("市一医院",)
    [event] = uow.published_of(CUSTOMER_UPDATED)
    assert list(event.changed_fields) == ["division_code", "grade"]
    # A new address places the customer again (the override goes).
    moved = await run(deps, customers.update_customer, customer.id,
                      CustomerInput(address="上海市静安区北京西路1号"), ["address"], who=HQ)
    assert (moved.division_code, moved.division_overridden) == ("310106", False)
    with pytest.raises(AlreadyExists):
        await run(deps, customers.update_customer, other.id,
                  CustomerInput(name="上海市第一人民医院"), ["name"], who=HQ)
    with pytest.raises(NotFound):
        await run(deps, customers.update_customer, "nope", CustomerInput(), ["grade"], who=HQ)
    # Each update moves the version on; one made against an older version changes nothing.
    assert (customer.version, updated.version, moved.version) == (1, 2, 3)
    with pytest.raises(StaleVersion) as stale:
        await run(deps, customers.update_customer, customer.id, CustomerInput(grade="一级"),
                  ["grade"], who=HQ, expected_version=2)
    assert stale.value.metadata == {"current_version": "3"}
    again = await run(deps, customers.update_customer, customer.id, CustomerInput(grade="一级"),
                      ["grade"], who=HQ, expected_version=3)
    assert (again.grade, again.version) == ("一级", 4)


async def test_list_by_division_and_text():
    deps, _ = await world()
    first = await create(deps, FIRST)
    await create(deps, CustomerInput(name="苏州市立医院", address="江苏省苏州市姑苏区道前街26号"))

    async def names(**query):
        page = await run(deps, customers.list_customers, CustomerQuery(**query),
                         PageRequest(), who=HQ)
        return [c.name for c in page.items]

    assert await names(division_code="310000") == [first.name]
    assert await names(text="第一") == [first.name]
    assert await names(text=FIRST.credit_code) == [first.name]
    assert len(await names()) == 2
    with pytest.raises(InvalidArgument):
        await names(division_code="31")


async def test_import_is_all_or_nothing_with_row_errors():
    deps, uow = await world()
    await create(deps, FIRST)
    rows = ("名称,统一社会信用代码,地址,科室\n"
            "上海市肺科医院,,上海市杨浦区政民路507号,胸外科;呼吸科\n"
            "坏代码医院,91310000MA1FL8XQ3X,上海市杨浦区,\n"
            "火星医院,,火星基地1号,\n"
            "上海市肺科医院(本部),,上海市杨浦区,\n"
            "上海市第一人民医院,,上海市虹口区,\n"
            "（）,,上海市杨浦区,\n")
    report = await run(deps, customers.import_customers, read_table(rows.encode()),
                       dry_run=False, who=HQ)
    assert (report.accepted, report.created) == (False, 0)
    assert [(e.row_number, e.code) for e in report.errors] == [
        (3, "INVALID_CREDIT_CODE"), (4, "UNKNOWN_DIVISION"), (5, "DUPLICATE_IN_FILE"),
        (6, "DUPLICATE"), (7, "INVALID_NAME")]
    assert all(e.message_zh and e.message_en for e in report.errors)
    assert len(uow.customers.rows) == 1
    good = read_table(("\n".join(rows.splitlines()[:2]) + "\n").encode("gb18030"))
    report = await run(deps, customers.import_customers, good, dry_run=False, who=MANAGER)
    assert (report.accepted, report.created) == (True, 1)
    lung = next(c for c in uow.customers.rows.values() if c.name == "上海市肺科医院")
    assert lung.departments == ("胸外科", "呼吸科") and lung.created_by == MANAGER.subject
    # The index knows it: the check finds it at once.
    assert (await check(deps, name="上海市肺科医院", address="上海市杨浦区")).verdict == (
        Verdict.DUPLICATE)
    with pytest.raises(PermissionDenied):
        await run(deps, customers.import_customers, good, dry_run=False, who=DEALER_A)
    with pytest.raises(InvalidArgument) as no_name:
        await run(deps, customers.import_customers, read_table(b"address\nx\n"),
                  dry_run=False, who=HQ)
    assert no_name.value.violations[0].field == "content"


async def test_a_dealer_sees_only_the_customers_it_is_tied_to():
    deps, _ = await world()
    untied = await create(deps, FIRST)
    held = await run(deps, registrations.submit_registration,
                     SubmitRegistration("A系列", new_customer=ZHONGSHAN), who=DEALER_A)
    mine = held.registration.customer_id

    async def listed(who) -> set[str]:
        page = await run(deps, customers.list_customers, CustomerQuery(), PageRequest(),
                         who=who)
        return {c.id for c in page.items}

    assert await listed(DEALER_A) == {mine}
    assert await listed(DEALER_B) == set()
    # HQ sees all; the manager (who edits the master) its dealers' and the untied ones.
    assert await listed(HQ) == await listed(MANAGER) == {mine, untied.id}
    assert (await run(deps, customers.get_customer, mine, who=DEALER_A)).id == mine
    for who, customer_id in ((DEALER_B, mine), (DEALER_A, untied.id)):
        with pytest.raises(NotFound):
            await run(deps, customers.get_customer, customer_id, who=who)
    # The duplicate check still tells B that the customer is held, and until when, but
    # neither by whom nor who created it.
    seen = await check(deps, who=DEALER_B, name="复旦大学附属中山医院", product_line="A系列",
                       address="上海市徐汇区")
    [candidate] = seen.candidates
    assert candidate.customer.id == mine and candidate.customer.created_by == ""
    assert [c.dealer_id for c in candidate.claims] == [""]
    hq = await check(deps, who=HQ, name="复旦大学附属中山医院", product_line="A系列",
                     address="上海市徐汇区")
    assert hq.candidates[0].claims[0].dealer_id == A


async def test_a_merge_tells_the_other_services_which_customer_went_where():
    deps, uow = await world()
    kept = await create(deps, FIRST)
    merged = await create(deps, CustomerInput(name="上海交通大学附属第一人民医院",
                                              address="上海市虹口区武进路85号"))
    with pytest.raises(PermissionDenied):
        await run(deps, aliases.merge_customers, kept.id, merged.id, "同一家", who=DEALER_A)
    result = await run(deps, aliases.merge_customers, kept.id, merged.id, "同一家", who=HQ)
    assert "上海交通大学附属第一人民医院" in result.aliases
    [event] = uow.published_of(CUSTOMER_MERGED)
    assert (event.customer.id, event.merged_customer_id, event.merged_customer_name) == (
        kept.id, merged.id, "上海交通大学附属第一人民医院")
    assert "上海交通大学附属第一人民医院" in event.customer.aliases
