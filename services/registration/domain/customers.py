"""Customers (hospitals first) and the duplicate check's vocabulary: what a user enters,
the customer master record, the claims other registrations hold on a look-alike, and
what a viewer may see of them. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import NamedTuple

from services.registration.domain.rules import Status, clean_credit_code
from shared import divisions
from shared.names.matching import MatchKind, Reason, Verdict
from shared.scope import Scope
from shared.text import campus_of, is_traditional, normalize_name


class CustomerType(enum.IntEnum):
    UNSPECIFIED = 0
    HOSPITAL = 1
    CLINIC = 2
    PHARMACY = 3
    DISTRIBUTOR_CUSTOMER = 4
    OTHER = 5


@dataclass(frozen=True)
class Placement:
    """Where an address lies: a six-digit GB/T 2260 code, or why it cannot be placed."""

    code: str
    problem: str = ""


@dataclass(frozen=True)
class CustomerInput:
    """A customer as a user enters it; the rest is derived (``CustomerValues``)."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    credit_code: str = ""
    address: str = ""
    # Overrides the division the address places; required when it cannot be placed.
    division_code: str = ""
    customer_type: int = CustomerType.UNSPECIFIED
    grade: str = ""
    departments: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerValues:
    """A customer input validated and derived: normalized name, division, city."""

    name: str
    normalized_name: str
    aliases: tuple[str, ...]
    credit_code: str | None
    address: str
    division_code: str
    division_overridden: bool
    city_code: str
    customer_type: int
    grade: str
    departments: tuple[str, ...]
    # "<division>|<street><number>" of the address, empty when it cannot be read.
    address_key: str

    def create(self, customer_id: str, now: datetime, created_by: str) -> Customer:
        return Customer(id=customer_id, created_at=now, updated_at=now,
                        created_by=created_by, **self.values())

    def values(self) -> dict:
        """The validated values alone (of a customer too: without id and history)."""
        return {f.name: getattr(self, f.name) for f in fields(CustomerValues)}

    def name_query(self) -> NameQuery:
        """What the duplicate check looks for to find this customer's duplicates."""
        return NameQuery(self.normalized_name, self.credit_code, self.city_code,
                         self.division_code, self.address_key, campus_of(self.name),
                         is_traditional(self.name))


@dataclass(frozen=True)
class NameQuery:
    """What the duplicate check matches: a normalized name (and its campus, and whether
    it was written in traditional script), a credit code, the city, the address key."""

    normalized: str
    credit_code: str | None
    city_code: str
    division_code: str = ""
    address_key: str = ""
    campus: str = ""
    traditional: bool = False


@dataclass(frozen=True)
class Customer(CustomerValues):
    """A customer in the master data: its values, and who created it when."""

    id: str
    created_at: datetime
    updated_at: datetime
    created_by: str = ""
    # Increases with every update (the REST API's ETag).
    version: int = 1

    @property
    def alias_keys(self) -> tuple[str, ...]:
        """The normalized aliases an exact alias match looks for (not the name itself)."""
        keys = (normalize_name(alias) for alias in self.aliases)
        return tuple(dict.fromkeys(k for k in keys if k and k != self.normalized_name))

    def as_input(self, **changes) -> CustomerInput:
        """What a user would enter to get this customer, with ``changes`` applied."""
        current = CustomerInput(
            name=self.name, aliases=self.aliases, credit_code=self.credit_code or "",
            address=self.address,
            division_code=self.division_code if self.division_overridden else "",
            customer_type=self.customer_type, grade=self.grade, departments=self.departments)
        return replace(current, **changes)

    def revised(self, values: CustomerValues, now: datetime) -> tuple[Customer, list[str]]:
        """This customer with ``values``, and the names of the fields a user changed."""
        changed = [name for name in EDITABLE
                   if getattr(self, name) != getattr(values, name)]
        return replace(self, updated_at=now, **values.values()), changed


# The customer fields an update may name (and an event lists when they change).
EDITABLE = ("name", "aliases", "credit_code", "address", "division_code", "customer_type",
            "grade", "departments")


class NameEntry(NamedTuple):
    """What the name index holds of a customer."""

    customer_id: str
    city_code: str
    normalized_name: str
    aliases: list[str]
    address_key: str = ""
    division_code: str = ""

    @property
    def alias_keys(self) -> list[str]:
        return [normalize_name(alias) for alias in self.aliases or ()]


@dataclass(frozen=True)
class DuplicateQuery:
    """A duplicate check: a name or a credit code, placed by address or division."""

    name: str = ""
    credit_code: str = ""
    address: str = ""
    division_code: str = ""
    # When set, candidates carry their registrations for this product line.
    product_line: str = ""


@dataclass(frozen=True)
class CustomerQuery:
    # Substring of the name or normalized name, or an exact credit code.
    text: str = ""
    division_code: str = ""
    customer_type: int = CustomerType.UNSPECIFIED

    def terms(self) -> tuple[str, str, str]:
        """(name substring, normalized-name substring, credit code) the text stands for."""
        text = self.text.strip()
        return text, normalize_name(text) or text, clean_credit_code(text)

    @property
    def division_prefix(self) -> str:
        """Customers inside the division have codes starting with this."""
        return divisions.prefix(self.division_code) if self.division_code else ""


@dataclass(frozen=True)
class CustomerVisibility:
    """Which customers a viewer reads. A dealer sees the customers it is tied to — it
    registered, holds, was granted or was assigned them (``dealer_ids``: the dealers in
    its scope); of the others it learns only what the duplicate check tells. Those who
    edit the master (HQ, channel managers) also see the customers no dealer is tied to.
    ``dealer_ids`` None: everything (a viewer of every dealer)."""

    dealer_ids: frozenset[str] | None
    untied: bool = False

    @classmethod
    def of(cls, viewer: Scope, edits_master: bool) -> CustomerVisibility:
        return cls(None if viewer.all_dealers else viewer.dealer_ids, edits_master)

    @property
    def everything(self) -> bool:
        return self.dealer_ids is None

    def allows(self, tied_dealers: set[str]) -> bool:
        """Whether a customer tied to these dealers is visible."""
        if self.dealer_ids is None:
            return True
        return bool(tied_dealers & self.dealer_ids) or (self.untied and not tied_dealers)


@dataclass(frozen=True)
class Claim:
    """Another registration on a candidate customer, shown as evidence."""

    registration_id: str
    dealer_id: str
    product_line: str
    status: Status
    submitted_at: datetime | None
    protected_until: datetime | None


@dataclass(frozen=True)
class Candidate:
    customer: Customer
    kind: MatchKind
    score_bps: int
    claims: tuple[Claim, ...] = ()
    # Why it matched (alias, abbreviation, traditional script, address, core…).
    reasons: tuple[Reason, ...] = ()

    def seen_by(self, viewer: Scope) -> Candidate:
        """Who holds a claim is a dealer's business secret: for a viewer who may not see
        that dealer, a claim tells only that the customer is held, how and until when —
        not by which dealer. Who created the customer is blanked for a viewer who does
        not see every dealer."""
        if viewer.all_dealers:
            return self
        return replace(self, customer=replace(self.customer, created_by=""), claims=tuple(
            c if viewer.allows(c.dealer_id) else replace(c, dealer_id="")
            for c in self.claims))


@dataclass(frozen=True)
class DuplicateCheck:
    """The answer of a duplicate check (also the evidence kept with a registration)."""

    verdict: Verdict
    candidates: tuple[Candidate, ...] = ()
    normalized_name: str = ""
    division_code: str = ""

    def seen_by(self, viewer: Scope) -> DuplicateCheck:
        if viewer.all_dealers:
            return self
        return replace(self, candidates=tuple(c.seen_by(viewer) for c in self.candidates))


@dataclass(frozen=True)
class CreatedCustomer:
    customer: Customer
    # Fuzzy look-alikes that did not block the creation, for information.
    possible_duplicates: tuple[Candidate, ...] = ()


def match_kind_code(kind: MatchKind) -> str:
    """The stable code of a match kind in errors, e.g. MATCH_KIND_CREDIT_CODE."""
    return f"MATCH_KIND_{kind.name}"
