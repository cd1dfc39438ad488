"""Events published by incentive (payloads in protos/qudao/incentive/v1/events.proto)."""

from __future__ import annotations

from qudao.incentive.v1 import events_pb2 as pb

from shared.events.catalog import declare

ACCRUAL_RECORDED = declare(
    "incentive", "accrual", "recorded", pb.AccrualRecorded,
    "A commission or rebate accrual was booked.")
COMMISSION_RULE_UPSERTED = declare(
    "incentive", "commission_rule", "upserted", pb.CommissionRuleUpserted,
    "A commission rule was created or changed.")
REBATE_PROGRAM_CREATED = declare(
    "incentive", "rebate_program", "created", pb.RebateProgramCreated,
    "A rebate program was created.")
REBATE_PROGRAM_UPDATED = declare(
    "incentive", "rebate_program", "updated", pb.RebateProgramUpdated,
    "A rebate program got a new version, in force for the periods from its effective date.")
SETTLEMENT_CLOSED = declare(
    "incentive", "settlement", "closed", pb.SettlementClosed,
    "A settlement period was closed: accruals frozen, statements computed.")
SETTLEMENT_POSTED = declare(
    "incentive", "settlement", "posted", pb.SettlementPosted,
    "Every dealer of a closed settlement period was credited.")
REBATE_CREDITED = declare(
    "incentive", "rebate", "credited", pb.RebateCredited,
    "A settled rebate or commission is credited to a dealer's account (order books it; "
    "credit_id is the idempotency key).")
