"""The flow service's settings (QUDAO_FLOW_*; options QUDAO_FLOW_OPTION_<NAME>)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class FlowSettings(ServiceSettings):
    process: ClassVar[str] = "flow"
