"""Events published by registration (payloads in protos/qudao/registration/v1/events.proto)."""

from __future__ import annotations

from qudao.registration.v1 import events_pb2 as pb

from shared.events.catalog import declare

CUSTOMER_CREATED = declare(
    "registration", "customer", "created", pb.CustomerCreated,
    "A customer (hospital) entered the master data.")
CUSTOMER_UPDATED = declare(
    "registration", "customer", "updated", pb.CustomerUpdated,
    "A customer's name, aliases, address or division changed.")
CUSTOMER_MERGED = declare(
    "registration", "customer", "merged", pb.CustomerMerged,
    "HQ folded one customer into another (a merge or a conflict decided as one hospital): "
    "what named the merged customer now names the kept one.")
REGISTRATION_SUBMITTED = declare(
    "registration", "registration", "submitted", pb.RegistrationSubmitted,
    "A dealer registered (报备) a customer for a product line.")
REGISTRATION_APPROVED = declare(
    "registration", "registration", "approved", pb.RegistrationApproved,
    "A registration was approved; the dealer holds the customer until protection ends.")
REGISTRATION_REJECTED = declare(
    "registration", "registration", "rejected", pb.RegistrationRejected,
    "A registration was rejected; the slot is free again.")
REGISTRATION_RECALLED = declare(
    "registration", "registration", "recalled", pb.RegistrationRecalled,
    "The dealer withdrew its registration.")
REGISTRATION_EXPIRED = declare(
    "registration", "registration", "expired", pb.RegistrationExpired,
    "A registration's protection period ended (the expiry scheduler).")
REGISTRATION_RENEWED = declare(
    "registration", "registration", "renewed", pb.RegistrationRenewed,
    "A registration's protection period was extended.")
REGISTRATION_STAGE_ADVANCED = declare(
    "registration", "registration_stage", "advanced", pb.RegistrationStageAdvanced,
    "A registration moved to another pipeline stage.")
CONFLICT_RAISED = declare(
    "registration", "conflict", "raised", pb.ConflictRaised,
    "Two dealers claimed the same customer (撞单); HQ must decide.")
CONFLICT_RESOLVED = declare(
    "registration", "conflict", "resolved", pb.ConflictResolved,
    "HQ decided a conflict.")
LEAD_CREATED = declare(
    "registration", "lead", "created", pb.LeadCreated,
    "HQ put a lead into the pool (公海).")
LEAD_ASSIGNED = declare(
    "registration", "lead", "assigned", pb.LeadAssigned,
    "A pool lead was assigned to a dealer, automatically by territory or by HQ.")
LEAD_CLAIMED = declare(
    "registration", "lead", "claimed", pb.LeadClaimed,
    "A dealer claimed a lead assigned to it, turning it into a registration.")
LEAD_RETURNED = declare(
    "registration", "lead", "returned", pb.LeadReturned,
    "A lead went back to the pool (released, or its claim deadline passed).")
AUTHORIZATION_GRANTED = declare(
    "registration", "authorization", "granted", pb.AuthorizationGranted,
    "A dealer was authorized for a product line at a hospital (and department).")
AUTHORIZATION_REVOKED = declare(
    "registration", "authorization", "revoked", pb.AuthorizationRevoked,
    "An authorization was revoked before its end.")
AUTHORIZATION_EXPIRED = declare(
    "registration", "authorization", "expired", pb.AuthorizationExpired,
    "An authorization reached its end date.")
AUTHORIZATION_OWNER_CHANGED = declare(
    "registration", "authorization_owner", "changed", pb.AuthorizationOwnerChanged,
    "An authorization passed to another channel manager after a hand-over.")
DEALER_NOTIFIED = declare(
    "registration", "dealer", "notified", pb.DealerNotified,
    "A notice for a dealer (conflict, lead assigned, registration decided or expired) to "
    "deliver.")
REGISTRATION_NOTE_ADDED = declare(
    "registration", "registration_note", "added", pb.RegistrationNoteAdded,
    "A follow-up note (visit, call) was added to a registration.")
