"""The demo's planned world is one the suite accepts: hospital names registration tells
apart (a medium world once had "中医医院第二分院" and "中医医院第2分院", which its import
refused as one hospital) and
addresses it does not take for one place, valid codes, and the same world on every run."""

from __future__ import annotations

from stdnum.cn import uscc

from shared.text import normalize_name
from suite.demo.world import Scale, plan


def test_a_medium_world_names_each_hospital_once_as_registration_reads_names():
    world = plan(Scale.named("medium"))
    keys = [(h.city_code, normalize_name(h.name)) for h in world.hospitals]
    assert len(keys) == len(set(keys)) == Scale.named("medium").hospitals
    # Two at one address are one hospital to registration too.
    assert len({h.address for h in world.hospitals}) == len(world.hospitals)
    assert all(uscc.is_valid(h.credit_code) for h in world.hospitals)
    assert len({h.credit_code for h in world.hospitals}) == len(world.hospitals)


def test_the_same_seed_plans_the_same_world():
    first, second = plan(Scale.named("small")), plan(Scale.named("small"))
    assert [h.name for h in first.hospitals] == [h.name for h in second.hospitals]
    assert [d.credit_code for d in first.dealers] == [d.credit_code for d in second.dealers]
    assert [o.client_order_ref for o in first.orders] == [o.client_order_ref
                                                          for o in second.orders]


def test_a_full_world_spreads_registrations_over_each_citys_hospitals():
    world = plan(Scale.named("full"))
    hospitals = {r.hospital for r in world.registrations}
    # A twentieth at most are conflicts on a hospital another dealer registered.
    assert len(hospitals) >= len(world.registrations) * 0.9
