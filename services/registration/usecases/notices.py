"""What every decision on a registration announces, whoever makes it (a manager, HQ
resolving a conflict, the scheduler): its event, and a notice to the dealer."""

from __future__ import annotations

from services.registration import messages
from services.registration.domain.registrations import Notice, Registration
from services.registration.usecases.ports import RegistrationUnitOfWork
from shared.events.registration import (
    DEALER_NOTIFIED,
    REGISTRATION_APPROVED,
    REGISTRATION_RECALLED,
    REGISTRATION_REJECTED,
)


def notify(uow: RegistrationUnitOfWork, notice: Notice) -> None:
    if notice.dealer_id:
        uow.events.record(DEALER_NOTIFIED, messages.dealer_notified(notice), notice.dealer_id)


def announce_approved(uow: RegistrationUnitOfWork, registration: Registration, *,
                      auto: bool = False) -> None:
    r = registration
    uow.events.record(REGISTRATION_APPROVED, messages.registration_approved(r, auto), r.id)
    notify(uow, Notice(r.dealer_id, "registration.approved",
                       f"报备 {r.customer_name}（{r.product_line}）已{'自动' if auto else ''}通过",
                       registration_id=r.id))


def announce_rejected(uow: RegistrationUnitOfWork, registration: Registration,
                      message: str = "") -> None:
    r = registration
    uow.events.record(REGISTRATION_REJECTED, messages.registration_rejected(r), r.id)
    notify(uow, Notice(r.dealer_id, "registration.rejected",
                       message or f"报备 {r.customer_name}（{r.product_line}）被驳回："
                                  f"{r.decision_note}", registration_id=r.id))


def announce_recalled(uow: RegistrationUnitOfWork, registration: Registration) -> None:
    uow.events.record(REGISTRATION_RECALLED, messages.registration_recalled(registration),
                      registration.id)
