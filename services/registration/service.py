"""Registration use cases: load through a unit of work, apply the domain rules, record
the events in the outbox, commit. One module per area under usecases/; this class is
their union, the one object the servicer, the consumers and the workers call."""

from __future__ import annotations

from services.registration.usecases.authorizations import AuthorizationUseCases
from services.registration.usecases.leads import LeadUseCases
from services.registration.usecases.pipeline import PipelineUseCases
from services.registration.usecases.scheduler import SchedulerUseCases


class RegistrationService(PipelineUseCases, LeadUseCases, AuthorizationUseCases,
                          SchedulerUseCases):
    """Customers and the duplicate check, the dealer projection, registrations (报备) with
    first-come protection, the HQ conflict queue, the lead pool, the pipeline,
    authorizations and the scheduler. (Pipeline builds on registrations, which build on
    customers, dealers and conflicts.)"""
