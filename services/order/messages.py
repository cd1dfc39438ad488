"""Domain ↔ the messages the order service speaks: what makes a Product message valid,
how a row of an HQ product file (CSV or XLSX, English or Chinese headers, read by
shared.tabular) becomes one, with RowError messages for the rows that do not; dealer
accounts and their events; incentive's rebate credits in. Kept out of domain/, which
imports no generated code."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from qudao.common.v1 import files_pb2, money_pb2
from qudao.order.v1 import events_pb2, order_pb2
from stdnum import ean

from services.order.domain.accounts import Account, AccountView, LimitChange, RebateCredit
from shared.clock import aware
from shared.convert import money_to_proto, to_timestamp
from shared.errors import FieldViolation
from shared.money import Money
from shared.tabular import Table

# field → the headers a file may give it, English first.
PRODUCT_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "产品编码", "物料编码"),
    "name": ("name", "产品名称", "名称"),
    "spec": ("spec", "规格型号", "规格"),
    "gtin": ("gtin", "udi_di", "UDI-DI", "GTIN", "产品标识"),
    "product_line": ("product_line", "产品线"),
    "unit": ("unit", "单位"),
    "list_price": ("list_price", "目录价", "单价"),
    "currency": ("currency", "币种"),
    "serial_tracked": ("serial_tracked", "序列号管理"),
}
REQUIRED_COLUMNS = ("code", "name", "gtin", "product_line")
TRUE_WORDS = {"1", "true", "yes", "y", "是", "√"}
FALSE_WORDS = {"", "0", "false", "no", "n", "否"}


def validate_product(index: int, product: order_pb2.Product) -> list[FieldViolation]:
    where = f"products[{index}]"
    violations = []
    if not product.code.strip():
        violations.append(FieldViolation(f"{where}.code", "is required"))
    if not product.name.strip():
        violations.append(FieldViolation(f"{where}.name", "is required"))
    if not product.product_line.strip():
        violations.append(FieldViolation(f"{where}.product_line", "is required"))
    gtin = product.gtin.strip()
    if not (gtin.isdigit() and len(gtin) in (8, 12, 13, 14) and ean.is_valid(gtin)):
        violations.append(FieldViolation(f"{where}.gtin",
                                         f"{gtin!r} is not a GTIN with a valid check digit"))
    if product.list_price.amount_minor < 0:
        violations.append(FieldViolation(f"{where}.list_price.amount_minor",
                                         "must not be negative"))
    return violations


def products_from_table(table: Table, currency: str
                        ) -> tuple[list[tuple[int, order_pb2.Product]], list[files_pb2.RowError]]:
    """Every row as a product (with its row number), or the reasons it is not one. A code
    given twice in the file is an error on its second row."""
    columns = {name: table.column(*headers) for name, headers in PRODUCT_COLUMNS.items()}
    missing = [PRODUCT_COLUMNS[name][0] for name in REQUIRED_COLUMNS if columns[name] is None]
    if missing:
        return [], [_error(1, "", "MISSING_COLUMN", f"缺少列：{'、'.join(missing)}",
                           f"missing columns: {', '.join(missing)}", "")]
    products: list[tuple[int, order_pb2.Product]] = []
    errors: list[files_pb2.RowError] = []
    first_row_of: dict[str, int] = {}
    gtin_row_of: dict[str, int] = {}
    for number, row in table.rows:
        def value(name: str, row=row) -> str:
            header = columns[name]
            return row.get(header, "") if header else ""

        row_errors = []
        price_text = value("list_price")
        amount = _minor_units(price_text)
        if amount is None:
            row_errors.append(_error(number, columns["list_price"] or "", "INVALID_PRICE",
                                     "目录价应为不小于 0、最多两位小数的金额",
                                     "list_price must be an amount ≥ 0 with at most 2 decimals",
                                     price_text))
        serial_text = value("serial_tracked").lower()
        if serial_text not in TRUE_WORDS | FALSE_WORDS:
            row_errors.append(_error(number, columns["serial_tracked"] or "", "INVALID_VALUE",
                                     "序列号管理应为 是/否", "serial_tracked must be yes or no",
                                     value("serial_tracked")))
        product = order_pb2.Product(
            code=value("code"), name=value("name"), spec=value("spec"), gtin=value("gtin"),
            product_line=value("product_line"), unit=value("unit"),
            list_price=money_pb2.Money(amount_minor=amount or 0,
                                       currency=value("currency").upper() or currency),
            serial_tracked=serial_text in TRUE_WORDS)
        for violation in validate_product(0, product):
            field_name = violation.field.split(".")[1]
            header = columns.get(field_name) or field_name
            row_errors.append(_error(number, header, f"INVALID_{field_name.upper()}",
                                     f"{header}：{violation.description}",
                                     f"{field_name}: {violation.description}",
                                     value(field_name) if field_name in columns else ""))
        if product.code in first_row_of:
            row_errors.append(_error(number, columns["code"] or "", "DUPLICATE_ROW",
                                     f"产品编码与第 {first_row_of[product.code]} 行重复",
                                     f"code repeats row {first_row_of[product.code]}",
                                     product.code))
        first_row_of.setdefault(product.code, number)
        gtin = product.gtin.zfill(14)
        if gtin in gtin_row_of and not row_errors:
            row_errors.append(_error(number, columns["gtin"] or "", "DUPLICATE_ROW",
                                     f"产品标识与第 {gtin_row_of[gtin]} 行重复",
                                     f"gtin repeats row {gtin_row_of[gtin]}", product.gtin))
        gtin_row_of.setdefault(gtin, number)
        if row_errors:
            errors.extend(row_errors)
        else:
            products.append((number, product))
    return products, errors


def _minor_units(text: str) -> int | None:
    if not text:
        return 0
    try:
        amount = Decimal(text.replace(",", "").replace("¥", "").replace("￥", ""))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    minor = amount * 100
    if amount < 0 or minor != minor.to_integral_value() or minor >= 2**63:
        return None
    return int(minor)


def _error(number: int, column: str, code: str, zh: str, en: str,
           value: str) -> files_pb2.RowError:
    return files_pb2.RowError(row_number=number, column=column, code=code, message_zh=zh,
                              message_en=en, value=value)


# ------------------------------------------------------------------ dealer accounts

def account_to_proto(view: AccountView) -> order_pb2.DealerAccount:
    account, currency = view.account, view.account.currency
    message = order_pb2.DealerAccount(
        dealer_id=account.dealer_id, selling_company=account.selling_company,
        credit_limit=money_to_proto(Money(account.credit_limit_minor, currency)),
        payment_terms_days=account.payment_terms_days,
        outstanding=money_to_proto(Money(view.outstanding_minor, currency)),
        open_orders=money_to_proto(Money(view.open_orders_minor, currency)),
        available_credit=money_to_proto(Money(view.available_minor, currency)),
        overdue=money_to_proto(Money(view.overdue_minor, currency)))
    if account.updated_at is not None:
        message.updated_at.CopyFrom(to_timestamp(aware(account.updated_at)))
    return message


def limit_change(request: order_pb2.SetCreditLimitRequest, default_company: str,
                 currency: str) -> LimitChange:
    return LimitChange(
        dealer_id=request.dealer_id,
        selling_company=request.selling_company.strip() or default_company,
        credit_limit_minor=request.credit_limit.amount_minor,
        currency=request.credit_limit.currency or currency,
        payment_terms_days=request.payment_terms_days
        if request.HasField("payment_terms_days") else None,
        reason=request.reason)


def account_updated(view: AccountView, before: Account,
                    reason: str) -> events_pb2.DealerAccountUpdated:
    return events_pb2.DealerAccountUpdated(
        account=account_to_proto(view), reason=reason,
        previous_credit_limit=money_to_proto(Money(before.credit_limit_minor,
                                                   before.currency)))


def rebate_credit(payload, occurred_on: str, default_company: str,
                  currency: str) -> RebateCredit:
    """incentive's RebateCredited in domain terms (booked on the day it was credited)."""
    return RebateCredit(
        credit_id=payload.credit_id, dealer_id=payload.dealer_id,
        selling_company=payload.selling_company.strip() or default_company,
        amount_minor=payload.amount.amount_minor,
        currency=payload.amount.currency or currency, credited_on=occurred_on,
        description=payload.description[:200])


def credit_applied(credit: RebateCredit) -> events_pb2.CreditApplied:
    return events_pb2.CreditApplied(
        credit_id=credit.credit_id, dealer_id=credit.dealer_id,
        selling_company=credit.selling_company,
        amount=money_to_proto(Money(credit.amount_minor, credit.currency)))
