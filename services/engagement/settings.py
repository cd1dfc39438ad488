"""The engagement service's settings (QUDAO_ENGAGEMENT_*; options
QUDAO_ENGAGEMENT_OPTION_<NAME>)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class EngagementSettings(ServiceSettings):
    process: ClassVar[str] = "engagement"

    # How often overdue SOP tasks are looked for (a task turns red at most this late).
    task_sweep_seconds: float = Field(default=30, gt=0)
    # How often dealer health is judged and at-risk dealers flagged.
    health_sweep_seconds: float = Field(default=300, gt=0)
