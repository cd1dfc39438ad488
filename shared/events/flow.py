"""Events published by flow (payloads in protos/qudao/flow/v1/events.proto)."""

from __future__ import annotations

from qudao.flow.v1 import events_pb2 as pb

from shared.events.catalog import declare

FLOW_UPLOAD_ACCEPTED = declare(
    "flow", "upload", "accepted", pb.FlowUploadAccepted,
    "A sell-through upload passed every check; its rows (aggregated per dealer, product, "
    "batch, hospital and day) are accepted flow. Large uploads come in parts.")
FLOW_UPLOAD_SUPERSEDED = declare(
    "flow", "upload", "superseded", pb.FlowUploadSuperseded,
    "An accepted upload was replaced by a newer one for the same dealer and period; "
    "consumers undo what its rows did.")
FLOW_UPLOAD_REJECTED = declare(
    "flow", "upload", "rejected", pb.FlowUploadRejected,
    "A sell-through upload failed validation; nothing of it was accepted.")
DIVERSION_DETECTED = declare(
    "flow", "diversion", "detected", pb.DiversionDetected,
    "A batch was sold by a dealer it never reached (窜货).")
DIVERSION_RESOLVED = declare(
    "flow", "diversion", "resolved", pb.DiversionResolved,
    "HQ confirmed or dismissed a diversion.")
