"""A small registration world for the service-layer tests: two Shanghai dealers and a
Beijing one (projected from identity), their staff, a channel manager, HQ; and ``run``,
which calls a use case with the collaborators its signature names."""

from __future__ import annotations

import inspect

from stdnum.cn import uscc

from services.registration.domain.customers import CustomerInput
from services.registration.domain.dealers import Assignment, AssignmentChange, DealerFacts
from services.registration.usecases import dealers
from services.registration.usecases.ports import Deps
from shared.context import Principal
from tests.service.registration.fakes import FakeRegistrationUnitOfWork, fake_deps

A, B, C = "d-a", "d-b", "d-c"
DEALERS = {
    A: DealerFacts(A, "上海康健医疗器械有限公司", 2, "east", ("310000",), ("A系列",), True),
    B: DealerFacts(B, "上海仁和医疗器械有限公司", 2, "east", ("310000",), ("A系列", "B系列"),
                   True),
    C: DealerFacts(C, "北京安康医疗器械有限公司", 2, "north", ("110000",), ("A系列",), True),
}
DEALER_A = Principal(subject="user:a", user_id="a", roles=frozenset({"dealer_sales"}),
                     dealer_id=A)
DEALER_B = Principal(subject="user:b", user_id="b", roles=frozenset({"dealer_sales"}),
                     dealer_id=B)
DEALER_C = Principal(subject="user:c", user_id="c", roles=frozenset({"dealer_admin"}),
                     dealer_id=C)
MANAGER = Principal(subject="user:cm", user_id="cm", roles=frozenset({"channel_manager"}))
HQ = Principal(subject="user:hq", user_id="hq", roles=frozenset({"hq_admin"}))
REGION_NORTH = Principal(subject="user:rn", user_id="rn",
                         roles=frozenset({"region_manager"}))
SERVICE_DESK = Principal(subject="user:cs", user_id="cs",
                         roles=frozenset({"customer_service"}))

ZHONGSHAN = CustomerInput(name="复旦大学附属中山医院", address="上海市徐汇区枫林路180号",
                          grade="三级甲等", departments=("心内科", "骨科"))
RUIJIN = CustomerInput(name="上海交通大学医学院附属瑞金医院", address="上海市黄浦区瑞金二路197号")


def hospital_code(serial: int) -> str:
    """A valid unified social credit code (统一社会信用代码) of a public institution."""
    body = f"12310000{serial:09d}"[:17]
    return body + uscc.calc_check_digit(body)


def run(deps: Deps, usecase, *args, **kwargs):
    """Call ``usecase`` with ``args`` and ``kwargs``, and each collaborator its signature
    names that is not given, from ``deps`` (a fresh unit of work for ``uow``)."""
    for name, parameter in inspect.signature(usecase).parameters.items():
        if parameter.kind is not parameter.KEYWORD_ONLY or name in kwargs:
            continue
        if name == "uow":
            kwargs[name] = deps.uow()
        elif hasattr(deps, name):
            kwargs[name] = getattr(deps, name)
    return usecase(*args, **kwargs)


async def world(**policy) -> tuple[Deps, FakeRegistrationUnitOfWork]:
    """The dealers projected, the manager assigned to A and B for A系列, and scopes: each
    dealer's staff its dealer, the manager A and B, the northern region manager C, HQ
    everything."""
    deps, uow = fake_deps(**policy)
    for dealer in DEALERS.values():
        await dealers.project_dealer(dealer, uow=uow, clock=deps.clock)
    await dealers.change_assignments(
        AssignmentChange(added=(Assignment("cm", A, "A系列"),
                                        Assignment("cm", B, "A系列"))), uow=uow)
    deps.scopes.allow(DEALER_A, [A])
    deps.scopes.allow(DEALER_B, [B])
    deps.scopes.allow(DEALER_C, [C])
    deps.scopes.allow(MANAGER, [A, B])
    deps.scopes.allow(REGION_NORTH, [C])
    deps.scopes.allow(HQ, all_dealers=True)
    deps.scopes.allow(SERVICE_DESK, all_dealers=True)
    uow.published.clear()
    return deps, uow
