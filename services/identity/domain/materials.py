"""The material library (素材库): product documents, price policies, training and talk
tracks (话术) as files with versions, each reaching an audience of dealers like a
notice, and who downloaded what. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from services.identity.domain.files import file_violations
from services.identity.domain.notices import Audience
from shared.audience import DealerFacts, Node
from shared.errors import FieldViolation

TITLE_MAX = 200
DESCRIPTION_MAX = 2_000
NOTE_MAX = 500


class MaterialKind(enum.StrEnum):
    PRODUCT_DOCUMENT = "product_document"
    PRICE_POLICY = "price_policy"
    TRAINING = "training"
    TALK_TRACK = "talk_track"


@dataclass(frozen=True)
class Version:
    number: int
    filename: str
    content_type: str
    size_bytes: int
    note: str
    published_by: str
    published_at: datetime


@dataclass(frozen=True)
class Material:
    id: str
    title: str
    description: str
    kind: MaterialKind
    audience: Audience
    # Oldest first; the last is current.
    versions: tuple[Version, ...]
    published_by: str

    @property
    def current(self) -> Version:
        return self.versions[-1]

    def version(self, number: int) -> Version | None:
        """The version ``number`` (0: the current one)."""
        if not number:
            return self.current
        return next((v for v in self.versions if v.number == number), None)

    def reaches(self, dealer: DealerFacts | None) -> bool:
        return dealer is not None and self.audience.predicate()(dealer)

    def matches(self, text: str) -> bool:
        return not text or text in self.title or text in self.description


@dataclass(frozen=True)
class NewFile:
    filename: str
    content_type: str
    content: bytes
    note: str = ""


@dataclass(frozen=True)
class NewMaterial:
    title: str
    description: str
    kind: MaterialKind | None
    expression: Node | None
    dealer_ids: tuple[str, ...]
    file: NewFile | None


@dataclass(frozen=True)
class Download:
    material_id: str
    version: int
    user_id: str
    dealer_id: str
    downloaded_at: datetime


@dataclass(frozen=True)
class Usage:
    """What one dealer's users downloaded of one material."""

    material_id: str
    material_title: str
    dealer_id: str
    dealer_name: str
    downloads: int
    users: int
    latest_version: int
    last_downloaded_at: datetime


def usage_of(material: Material, dealer_id: str, dealer_name: str,
             downloads: list[Download]) -> Usage:
    return Usage(material.id, material.title, dealer_id, dealer_name, len(downloads),
                 len({d.user_id for d in downloads}), max(d.version for d in downloads),
                 max(d.downloaded_at for d in downloads))


def file_problems(file: NewFile | None) -> list[FieldViolation]:
    if file is None:
        return [FieldViolation("file", "is required")]
    problems = file_violations("file", file.filename, file.content_type, file.content)
    if len(file.note) > NOTE_MAX:
        problems.append(FieldViolation("file.note", f"at most {NOTE_MAX} characters"))
    return problems


def material_violations(material: NewMaterial) -> list[FieldViolation]:
    """Everything wrong with a material to publish, each naming its field."""
    problems = []
    if not material.title.strip():
        problems.append(FieldViolation("title", "is required"))
    elif len(material.title) > TITLE_MAX:
        problems.append(FieldViolation("title", f"at most {TITLE_MAX} characters"))
    if len(material.description) > DESCRIPTION_MAX:
        problems.append(FieldViolation("description", f"at most {DESCRIPTION_MAX} characters"))
    if material.kind is None:
        problems.append(FieldViolation("kind", "is required"))
    if material.expression is None and not material.dealer_ids:
        problems.append(FieldViolation("audience", "a tag expression or dealer_ids is required"))
    return problems + file_problems(material.file)
