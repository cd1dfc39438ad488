"""撞单 on real-world hospital names, through the gateway: each category of spelling a
dealer types (traditional script, abbreviations and ordinals, second official names
from HQ's alias list, the address, the short form of an official long name, a branch
campus in another city) is caught by the duplicate check — with the reason shown — and
a registration of that spelling lands on the known customer instead of a new one; the
hard cases (湘雅二 vs 湘雅三, the same name in another city) stay apart. HQ teaches the
check: a conflict decided as "the same customer" and a merge keep the losing spelling
as an alias."""

from __future__ import annotations

from tests.registration.helpers import ZHONGSHAN, add_dealer

RUIJIN = {"name": "上海交通大学医学院附属瑞金医院", "address": "上海市黄浦区瑞金二路197号"}
TENTH = {"name": "上海市第十人民医院", "address": "上海市静安区延长中路301号"}
FIRST = {"name": "上海市第一人民医院", "address": "上海市虹口区武进路85号"}
XIANGYA_2 = {"name": "中南大学湘雅二医院", "address": "湖南省长沙市芙蓉区人民中路139号"}
ZHENGDA_1 = {"name": "郑州大学第一附属医院", "address": "河南省郑州市二七区建设东路1号"}
JIANGSU = {"name": "江苏省人民医院", "address": "江苏省南京市鼓楼区广州路300号"}
ALIASES = ("name,alias,source\n"
           "上海市第一人民医院,上海交通大学附属第一人民医院,医院官网\n").encode()


async def test_every_category_is_caught_with_its_reason_and_registers_the_known_customer(
        suite, world):
    dealer = world.dealers[0]
    async with suite.client(world.admin_token) as hq, suite.client(dealer.token) as staff:
        known = {}
        for key, body in (("zhongshan", ZHONGSHAN), ("ruijin", RUIJIN), ("tenth", TENTH),
                          ("first", FIRST), ("xiangya2", XIANGYA_2), ("zhengda1", ZHENGDA_1),
                          ("jiangsu", JIANGSU)):
            response = await hq.post("/api/v1/customers", json=body)
            assert response.status_code == 201, response.text
            known[key] = response.json()["customer"]["id"]
        # HQ's alias list: a second official name.
        response = await staff.post("/api/v1/customers/aliases/import", content=ALIASES,
                                    params={"filename": "aliases.csv"})
        assert response.status_code == 403
        bad = await hq.post("/api/v1/customers/aliases/import", params={
            "filename": "aliases.csv"}, content="name,alias,source\n不存在的医院,某某,x\n"
            .encode())
        assert bad.status_code == 200 and not bad.json()["accepted"]
        assert bad.json()["errors"][0]["row_number"] == 2
        assert bad.json()["errors"][0]["code"] == "NOT_FOUND"
        response = await hq.post("/api/v1/customers/aliases/import", content=ALIASES,
                                 params={"filename": "aliases.csv"})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] and response.json()["added"] == 1

        async def check(name: str, address: str) -> dict:
            response = await staff.post("/api/v1/customers/check-duplicates", json={
                "name": name, "address": address, "product_line": "A系列"})
            assert response.status_code == 200, response.text
            return response.json()

        caught = [
            # (spelling, where, customer, verdict, kind, a reason it gives)
            ("復旦大學附屬中山醫院", "上海市徐汇区", "zhongshan", "duplicate", "normalized_name",
             "traditional"),
            ("上交瑞金医院", "上海市黄浦区", "ruijin", "duplicate", "normalized_name",
             "abbreviation"),
            ("郑大一附院", "河南省郑州市二七区", "zhengda1", "duplicate", "normalized_name",
             "abbreviation"),
            ("省人医", "江苏省南京市鼓楼区", "jiangsu", "duplicate", "normalized_name",
             "abbreviation"),
            ("上海交通大学附属第一人民医院", "上海市虹口区", "first", "duplicate", "alias",
             "alias"),
            ("上海十院", "上海市静安区延长中路301号", "tenth", "duplicate", "address",
             "address"),
            ("瑞金医院", "上海市黄浦区", "ruijin", "duplicate", "core_name", "core"),
            ("湘雅二医院", "湖南省长沙市芙蓉区", "xiangya2", "duplicate", "core_name", "core"),
            ("中南大学湘雅二医院（江西院区）", "江西省南昌市红谷滩区", "xiangya2",
             "possible_duplicate", "other_city", "other_city"),
        ]
        for name, address, key, verdict, kind, reason in caught:
            answer = await check(name, address)
            assert answer["verdict"] == verdict, (name, answer)
            best = answer["candidates"][0]
            assert (best["customer"]["id"], best["match_kind"]) == (known[key], kind), name
            assert reason in best["reasons"], (name, best["reasons"])
        # The hard cases stay apart: another ordinal, 省人医 where there is no province,
        # the same plain name in another city.
        for name, address in (("湘雅三医院", "湖南省长沙市芙蓉区"),
                              ("湘雅医院", "湖南省长沙市芙蓉区"), ("省人医", "上海市黄浦区"),
                              ("瑞金医院", "江西省瑞金市"), ("上海市第六人民医院", "上海市徐汇区")):
            answer = await check(name, address)
            assert answer["verdict"] == "none", (name, answer)

        # The registration path: each spelling registers the known customer.
        for name, address, key in (("復旦大學附屬中山醫院", "上海市徐汇区", "zhongshan"),
                                   ("上交瑞金医院", "上海市黄浦区", "ruijin"),
                                   ("上海交通大学附属第一人民医院", "上海市虹口区", "first"),
                                   ("上海十院", "上海市静安区延长中路301号", "tenth")):
            response = await staff.post("/api/v1/registrations", json={
                "product_line": "A系列", "customer": {"name": name, "address": address}})
            assert response.status_code == 201, response.text
            assert response.json()["customer_id"] == known[key], name
        # Where the dealer's territory reaches: abbreviations, the short form, and a
        # branch campus in another city (a new customer, for HQ review).
        wide = await add_dealer(suite, world, "全国医疗器械经销商有限公司",
                                ["410000", "430000", "320000", "360000"], ["A系列"])
        for name, address, key in (("郑大一附院", "河南省郑州市二七区", "zhengda1"),
                                   ("省人医", "江苏省南京市鼓楼区", "jiangsu"),
                                   ("湘雅二医院", "湖南省长沙市芙蓉区", "xiangya2")):
            response = await hq.post("/api/v1/registrations", json={
                "dealer_id": wide, "product_line": "A系列",
                "customer": {"name": name, "address": address}})
            assert response.status_code == 201, response.text
            assert response.json()["customer_id"] == known[key], name
        response = await hq.post("/api/v1/registrations", json={
            "dealer_id": wide, "product_line": "A系列",
            "customer": {"name": "中南大学湘雅二医院（江西院区）",
                         "address": "江西省南昌市红谷滩区"}})
        assert response.status_code == 201, response.text
        branch = response.json()
        assert branch["customer_id"] != known["xiangya2"]
        assert branch["status"] == "under_review"
        assert branch["evidence"][0]["customer"]["id"] == known["xiangya2"]
        assert "other_city" in branch["evidence"][0]["reasons"]
        response = await hq.post("/api/v1/registrations", json={
            "dealer_id": wide, "product_line": "A系列",
            "customer": {"name": "湘雅三医院", "address": "湖南省长沙市芙蓉区"}})
        assert response.status_code == 201, response.text
        assert response.json()["customer_id"] not in known.values()


async def test_hq_decisions_that_two_are_one_teach_the_check_an_alias(suite, world):
    first, second = world.dealers
    async with suite.client(world.admin_token) as hq, suite.client(first.token) as dealer1, \
            suite.client(second.token) as dealer2:
        response = await dealer1.post("/api/v1/registrations", json={
            "product_line": "A系列", "customer": ZHONGSHAN})
        assert response.status_code == 201, response.text
        held = response.json()
        # Another district: the same core is only a look-alike, for HQ review.
        response = await dealer2.post("/api/v1/registrations", json={
            "product_line": "A系列", "customer": {"name": "中山医院",
                                                 "address": "上海市长宁区仙霞路99号"}})
        assert response.status_code == 201, response.text
        review = response.json()
        assert review["status"] == "under_review" and review["conflict_id"]
        response = await hq.post(f"/api/v1/conflicts/{review['conflict_id']}/resolve", json={
            "winning_registration_id": held["id"], "note": "同一家医院，先到先得",
            "same_customer": True})
        assert response.status_code == 200, response.text
        lost = (await dealer2.get(f"/api/v1/registrations/{review['id']}")).json()
        assert lost["status"] == "rejected" and lost["customer_id"] == held["customer_id"]
        customer = (await hq.get(f"/api/v1/customers/{held['customer_id']}")).json()
        assert "中山医院" in customer["aliases"]
        assert (await hq.get(f"/api/v1/customers/{review['customer_id']}")).status_code == 404
        answer = (await dealer2.post("/api/v1/customers/check-duplicates", json={
            "name": "中山医院", "address": "上海市长宁区"})).json()
        assert answer["verdict"] == "duplicate"
        assert answer["candidates"][0]["match_kind"] == "alias"
        # A dealer sees that it is held, and until when, never by whom.
        claim = (await dealer2.post("/api/v1/customers/check-duplicates", json={
            "name": "中山医院", "address": "上海市长宁区", "product_line": "A系列"})
        ).json()["candidates"][0]["claims"][0]
        assert claim.get("dealer_id", "") == "" and claim["status"] == "approved"
        assert claim["protected_until"]
        assert answer["candidates"][0]["customer"].get("created_by", "") == ""

        # A merge: 同济大学附属肺科医院 is 上海市肺科医院.
        ids = []
        for body in ({"name": "上海市肺科医院", "address": "上海市杨浦区政民路507号"},
                     {"name": "同济大学附属肺科医院", "address": "上海市徐汇区"}):
            response = await hq.post("/api/v1/customers", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["customer"]["id"])
        response = await dealer1.post(f"/api/v1/customers/{ids[0]}/merge", json={
            "merged_customer_id": ids[1], "note": "同一家"})
        assert response.status_code in (403, 404)
        response = await hq.post(f"/api/v1/customers/{ids[0]}/merge", json={
            "merged_customer_id": ids[1], "note": ""})
        assert response.status_code == 400
        response = await hq.post(f"/api/v1/customers/{ids[0]}/merge", json={
            "merged_customer_id": ids[1], "note": "同一家医院"})
        assert response.status_code == 200, response.text
        assert "同济大学附属肺科医院" in response.json()["aliases"]
        answer = (await dealer1.post("/api/v1/customers/check-duplicates", json={
            "name": "同济大学附属肺科医院", "address": "上海市徐汇区"})).json()
        assert answer["verdict"] == "duplicate"
        assert answer["candidates"][0]["customer"]["id"] == ids[0]
