"""Territory containment, the protection period, lead assignment and input rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.registration.domain.rules import (
    DealerView,
    LeadCandidate,
    Policy,
    active_key,
    clean_credit_code,
    credit_code_violations,
    pick_dealer,
    territory_violation,
)
from services.registration.settings import RegistrationSettings
from shared import divisions


@pytest.mark.parametrize(("outer", "inner", "inside"), [
    ("310000", "310104", True), ("310000", "310100", True), ("310000", "310000", True),
    ("310100", "310104", True), ("310104", "310104", True), ("310104", "310105", False),
    ("310000", "320104", False), ("320100", "320104", True), ("320100", "320200", False),
    ("320000", "320582", True), ("", "310104", False), ("310000", "31010", False),
])
def test_division_containment(outer, inner, inside):
    assert divisions.contains(outer, inner) is inside


def test_city_of():
    assert divisions.city_of("310104") == "310100"
    assert divisions.city_of("310000") == "310100"  # a municipality is one city
    assert divisions.city_of("500231") == "500100"
    assert divisions.city_of("320582") == "320500"
    assert divisions.city_of("320500") == "320500"
    assert divisions.city_of("320000") == ""         # a bare province is no city
    assert divisions.city_of("abc") == ""


def dealer(**overrides) -> DealerView:
    values = dict(id="d1", name="经销商", tier=2, division_codes=("310000",),
                  product_lines=("A系列",))
    values.update(overrides)
    return DealerView(**values)


def test_territory_rule():
    assert territory_violation(dealer(), "310104", "A系列") is None
    outside = territory_violation(dealer(), "110105", "A系列")
    assert outside.field == "division_code" and "110105" in outside.description
    not_carried = territory_violation(dealer(), "310104", "B系列")
    assert not_carried.field == "product_line"
    assert territory_violation(dealer(division_codes=("310104", "320100")), "320106",
                               "A系列") is None


def test_protection_period_and_renewal():
    policy = Policy(protection_days=90)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.protected_until(start) == start + timedelta(days=90)
    # renewal never shortens, and restarts the full period from now
    now = start + timedelta(days=80)
    assert policy.renewed_until(start + timedelta(days=90), now) == now + timedelta(days=90)
    late = start + timedelta(days=200)
    assert policy.renewed_until(start + timedelta(days=400), late) == start + timedelta(days=400)
    env = {"QUDAO_REGISTRATION_DATABASE_URL": "sqlite+aiosqlite:///x.db",
           "QUDAO_NATS_URL": "nats://127.0.0.1:1", "QUDAO_JWT_PUBLIC_KEY_FILE": "k.pem"}
    settings = RegistrationSettings.from_env(
        {**env, "QUDAO_REGISTRATION_OPTION_PROTECTION_DAYS": "30",
         "QUDAO_REGISTRATION_OPTION_STAGES": "a, b"})
    assert settings.policy().stages == ("a", "b")
    assert settings.policy().protection_days == 30
    assert RegistrationSettings.from_env(env).policy().protection_days == 90


def test_stage_order():
    policy = Policy()
    assert policy.stage_index("initial_contact") == 0
    assert policy.stage_index("contract_signed") == 3
    assert policy.stage_index("nope") == -1


def test_lead_assignment_rule():
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    later = earlier + timedelta(hours=1)
    assert pick_dealer([]) is None
    # lowest tier number first (platform 1 before tier one 2), whatever the load
    assert pick_dealer([LeadCandidate("a", 2, 0, None), LeadCandidate("p", 1, 9, later)]) == "p"
    # then the least loaded
    assert pick_dealer([LeadCandidate("a", 2, 3, None), LeadCandidate("b", 2, 1, later)]) == "b"
    # then round-robin: the one assigned longest ago (never first)
    assert pick_dealer([LeadCandidate("a", 2, 1, later), LeadCandidate("b", 2, 1, earlier)]) == "b"
    assert pick_dealer([LeadCandidate("a", 2, 1, earlier), LeadCandidate("b", 2, 1, None)]) == "b"


def test_credit_codes_and_slots():
    assert credit_code_violations("", "x") == []
    assert credit_code_violations("91310000MA1FL8XQ3X", "customer.credit_code")[0].field == \
        "customer.credit_code"
    assert clean_credit_code(" 9131-0000 ma1fl8xq30 ") == "91310000MA1FL8XQ30"
    assert active_key("c1", "A系列") == "c1|A系列"
