"""The flow service's settings (QUDAO_FLOW_*; options QUDAO_FLOW_OPTION_<NAME>)."""

from __future__ import annotations

from typing import ClassVar

from shared.names.matching import DEFAULT_FUZZY_THRESHOLD_BPS
from shared.settings import ServiceSettings


class FlowSettings(ServiceSettings):
    process: ClassVar[str] = "flow"

    # Fuzzy hospital matches within the dealer's territory count from this similarity.
    fuzzy_threshold_bps: int = DEFAULT_FUZZY_THRESHOLD_BPS
    # Product lines whose sales need an authorization (dealer x line x hospital), comma
    # separated; "*" for every line; empty for none.
    authorization_lines: str = ""
    max_file_bytes: int = 512 * 1024 * 1024
    max_rows: int = 1_000_000
    max_columns: int = 64
    # Rows checked between two progress reports.
    chunk_rows: int = 100_000
    # A validator that has not reported for this long is presumed dead; another replica
    # takes its upload over.
    lease_seconds: float = 60.0
    validator_poll_seconds: float = 2.0
    # Rows per FlowUploadAccepted event (a large upload is published in parts).
    event_rows_per_part: int = 2000
    # Where files are decoded while validated (the system's temporary directory if empty).
    scratch_dir: str = ""

    def authorization_line_set(self) -> frozenset[str] | None:
        text = self.authorization_lines.strip()
        if text == "*":
            return None
        return frozenset(line.strip() for line in text.split(",") if line.strip())
