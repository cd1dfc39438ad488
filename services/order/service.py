"""Order use cases: load through a unit of work, apply the domain rules, record the
events in the outbox, commit. One module per area under usecases/; this class is their
union, the one object the servicer and the consumers call."""

from __future__ import annotations

from services.order.usecases.fulfilment import FulfilmentUseCases
from services.order.usecases.ledger import LedgerUseCases
from services.order.usecases.orders import OrderUseCases
from services.order.usecases.returns import ReturnUseCases
from services.order.usecases.statements import StatementUseCases
from services.order.usecases.stats import StatsUseCases
from shared.pagination import page_size


class OrderService(OrderUseCases, FulfilmentUseCases, ReturnUseCases,
                   StatementUseCases, StatsUseCases, LedgerUseCases):
    """Catalog, price lists, accounts, orders, ERP ingest, receipts, returns,
    statements, invoices and payments, channel inventory and the dashboards' figures."""


def page_args(page) -> tuple[int, str]:
    return page_size(page.page_size), page.page_token
