from datetime import date

import pytest

from services.incentive.domain.commission import (
    CommissionRule,
    CustomerSource,
    SaleContext,
    validate_rule,
)
from services.incentive.domain.tiers import Basis, Mode, Scheme, Threshold, Tier, Volume, evaluate
from shared.errors import InvalidArgument
from shared.money import Money


def test_commission_is_the_rate_of_the_base():
    assert CommissionRule(base_rate_bps=200).commission_on(Money(75_000)) == Money(1_500)
    assert CommissionRule(base_rate_bps=333).commission_on(Money(100)) == Money(3)


def test_a_source_rate_beats_the_base_rate():
    rule = CommissionRule(base_rate_bps=100, source_rates={CustomerSource.HQ_LEAD: 50})
    sale = SaleContext("d", "c", "p", "A", date(2026, 1, 1), CustomerSource.HQ_LEAD)
    assert rule.rate_for(sale) == 50


@pytest.mark.parametrize("rate", [-1, 10_001])
def test_rates_outside_0_to_100_percent_are_refused(rate):
    with pytest.raises(InvalidArgument):
        validate_rule(CommissionRule(name="x", base_rate_bps=rate), [])


TIERS = (Tier(100, 100), Tier(200, 300))


@pytest.mark.parametrize("mode, quantity, expected", [
    (Mode.RETROACTIVE, 99, (0, 0)), (Mode.RETROACTIVE, 150, (1, 1_500)),
    (Mode.RETROACTIVE, 250, (2, 7_500)),
    # marginal: 100 units at 1%, 50 at 3%, at the average price (1,000 fen per unit)
    (Mode.MARGINAL, 250, (2, 1_000 + 1_500)),
])
def test_retroactive_and_marginal_tiers(mode, quantity, expected):
    outcome = evaluate(Scheme(mode, Threshold.QUANTITY, TIERS), Basis.QUANTITY,
                       Volume(quantity, quantity * 1_000))
    assert (outcome.tier, outcome.rebate_minor) == expected


def test_a_cap_limits_and_a_target_share_sets_the_thresholds():
    scheme = Scheme(Mode.RETROACTIVE, Threshold.TARGET_SHARE, (Tier(10_000, 500),), 3_000)
    assert evaluate(scheme, Basis.AMOUNT, Volume(0, 99_999), target=100_000).tier == 0
    reached = evaluate(scheme, Basis.AMOUNT, Volume(0, 100_000), target=100_000)
    assert (reached.tier, reached.rebate_minor, reached.capped) == (1, 3_000, True)
    assert evaluate(scheme, Basis.AMOUNT, Volume(0, 100_000), target=None).tier == 0
