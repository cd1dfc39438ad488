"""Events published by order (payloads in protos/qudao/order/v1/events.proto)."""

from __future__ import annotations

from qudao.order.v1 import events_pb2 as pb

from shared.events.catalog import declare

ORDER_SUBMITTED = declare(
    "order", "order", "submitted", pb.OrderSubmitted,
    "A dealer submitted an order (credit checked; it may await approval).")
PRODUCT_UPSERTED = declare(
    "order", "product", "upserted", pb.ProductUpserted,
    "A catalog product was created or changed (GTIN, product line, price).")
ORDER_APPROVED = declare(
    "order", "order", "approved", pb.OrderApproved,
    "An approval stage approved an order (once per stage; fully_approved when none is "
    "left).")
ORDER_REJECTED = declare(
    "order", "order", "rejected", pb.OrderRejected,
    "An approval stage rejected an order.")
ORDER_CANCELLED = declare(
    "order", "order", "cancelled", pb.OrderCancelled,
    "An order was cancelled before shipping.")
ORDER_LINE_CLOSED = declare(
    "order", "order_line", "closed", pb.OrderLineClosed,
    "An order line was closed short; nothing more will ship on it.")
SHIPMENT_RECORDED = declare(
    "order", "shipment", "recorded", pb.ShipmentRecorded,
    "The ERP shipped goods to a dealer: lines with GTIN, batch, expiry, serials and "
    "quantity (never sent for a duplicate push).")
RECEIPT_CONFIRMED = declare(
    "order", "receipt", "confirmed", pb.ReceiptConfirmed,
    "A dealer confirmed receiving a shipment, with any shortage or damage.")
DISCREPANCY_RESOLVED = declare(
    "order", "discrepancy", "resolved", pb.DiscrepancyResolved,
    "A reported receipt discrepancy was settled.")
INVOICE_RECORDED = declare(
    "order", "invoice", "recorded", pb.InvoiceRecorded,
    "The ERP recorded an invoice or a credit note.")
PAYMENT_RECORDED = declare(
    "order", "payment", "recorded", pb.PaymentRecorded,
    "The ERP recorded a dealer's payment.")
RETURN_REQUESTED = declare(
    "order", "return", "requested", pb.ReturnRequested,
    "A dealer asked to return goods.")
RETURN_APPROVED = declare(
    "order", "return", "approved", pb.ReturnApproved,
    "A return request was approved.")
RETURN_REJECTED = declare(
    "order", "return", "rejected", pb.ReturnRejected,
    "A return request was rejected.")
RETURN_RECEIVED = declare(
    "order", "return", "received", pb.ReturnReceived,
    "Returned goods arrived back; channel inventory and commissions adjust.")
STATEMENT_ISSUED = declare(
    "order", "statement", "issued", pb.StatementIssued,
    "A reconciliation statement (对账单) was issued to a dealer.")
STATEMENT_CONFIRMED = declare(
    "order", "statement", "confirmed", pb.StatementConfirmed,
    "A dealer confirmed its statement.")
STATEMENT_DISPUTED = declare(
    "order", "statement", "disputed", pb.StatementDisputed,
    "A dealer disputed a statement line.")
DEALER_ACCOUNT_UPDATED = declare(
    "order", "dealer_account", "updated", pb.DealerAccountUpdated,
    "A dealer account's credit limit or payment terms changed.")
PRICE_LIST_UPSERTED = declare(
    "order", "price_list", "upserted", pb.PriceListUpserted,
    "A tier price list was created or changed.")
CREDIT_APPLIED = declare(
    "order", "credit", "applied", pb.CreditApplied,
    "A rebate credit (RebateCredited) was booked to the dealer's account.")
