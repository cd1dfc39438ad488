"""The registration service's settings (QUDAO_REGISTRATION_*; options
QUDAO_REGISTRATION_OPTION_<NAME>)."""

from __future__ import annotations

from typing import ClassVar, Literal

from services.registration.domain.rules import DEFAULT_STAGES, Policy
from shared.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    process: ClassVar[str] = "registration"

    protection_days: float = 90
    expiring_within_days: int = 14
    fuzzy_threshold_bps: int = 8500
    # "clean": approve automatically inside the territory when the duplicate check found
    # nothing but (at most) the same customer with no other claim.
    auto_approve: Literal["never", "clean"] = "never"
    # Pipeline stages, comma-separated, in order.
    stages: str = ",".join(DEFAULT_STAGES)
    lead_claim_hours: float = 72
    scheduler_interval_seconds: float = 30
    # How often the duplicate-check index picks up customers written by other replicas.
    index_refresh_seconds: float = 2

    def policy(self) -> Policy:
        stages = tuple(s.strip() for s in self.stages.split(",") if s.strip())
        return Policy(
            protection_days=self.protection_days,
            expiring_within_days=self.expiring_within_days,
            fuzzy_threshold_bps=self.fuzzy_threshold_bps,
            auto_approve=self.auto_approve,
            stages=stages or DEFAULT_STAGES,
            lead_claim_hours=self.lead_claim_hours,
            scheduler_interval_seconds=self.scheduler_interval_seconds,
        )
