"""Identifiers as a collaborator: use cases ask an id source for new ids, so a test can
predict them."""

from __future__ import annotations

import uuid
from typing import Protocol


class IdSource(Protocol):
    def new_id(self) -> str: ...


class RandomIds:
    """UUID4 strings."""

    def new_id(self) -> str:
        return str(uuid.uuid4())
