import pytest
from qudao.order.v1 import events_pb2, order_pb2

from shared.bus.envelope import UndecodableEvent, build_envelope, decode_envelope
from shared.context import Principal, principal_var, request_id_var
from shared.events.order import SHIPMENT_RECORDED


def test_envelope_carries_identity_and_context_and_round_trips():
    request_token = request_id_var.set("req-1")
    principal_token = principal_var.set(Principal(subject="user:42"))
    try:
        payload = events_pb2.OrderSubmitted(order=order_pb2.Order(id="o-1", dealer_id="d-1"))
        envelope = build_envelope("order", payload, "o-1")
    finally:
        request_id_var.reset(request_token)
        principal_var.reset(principal_token)
    assert envelope.event_type == "qudao.order.v1.OrderSubmitted"
    assert (envelope.producer, envelope.request_id, envelope.principal) == (
        "order", "req-1", "user:42")
    assert envelope.schema_version == 1 and envelope.occurred_at.seconds > 0
    event = decode_envelope("qudao.order.order.submitted", envelope.SerializeToString())
    assert event.event_id == envelope.event_id
    assert event.payload.order.dealer_id == "d-1"


@pytest.mark.parametrize("data", [b"\x00garbage\xff", b""])
def test_undecodable_bytes_are_reported(data):
    with pytest.raises(UndecodableEvent):
        decode_envelope("qudao.order.order.submitted", data)


def test_subjects_follow_the_convention():
    assert SHIPMENT_RECORDED.subject == "qudao.order.shipment.recorded"
