import pytest

from services.incentive.domain.commission import CommissionRule
from shared.money import Money


def test_commission_is_the_rate_of_the_base():
    assert CommissionRule(200).commission_on(Money(75_000)) == Money(1_500)
    assert CommissionRule(333).commission_on(Money(100)) == Money(3)


@pytest.mark.parametrize("rate", [-1, 10_001])
def test_rates_outside_0_to_100_percent_are_refused(rate):
    with pytest.raises(ValueError):
        CommissionRule(rate)
