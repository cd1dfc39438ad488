from qudao.common.v1 import money_pb2
from qudao.order.v1 import order_pb2

from gateway.protojson import enum_number, to_json


def test_int64_stay_numbers_and_enums_are_short_names():
    order = order_pb2.Order(id="o", status=order_pb2.ORDER_STATUS_PARTIALLY_SHIPPED,
                            total=money_pb2.Money(amount_minor=2**40, currency="CNY"),
                            lines=[order_pb2.OrderLine(line_no=1, quantity_ordered=3)])
    body = to_json(order)
    assert body["status"] == "partially_shipped"
    assert body["total"] == {"amount_minor": 2**40, "currency": "CNY"}
    assert body["lines"][0]["quantity_ordered"] == 3
    assert body["submitted_at"] is None


def test_enum_names_map_back():
    statuses = order_pb2.OrderStatus.DESCRIPTOR
    assert enum_number(statuses, "shipped") == order_pb2.ORDER_STATUS_SHIPPED
    assert enum_number(statuses, "unspecified") is None
    assert enum_number(statuses, "bogus") is None
