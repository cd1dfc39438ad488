"""Data for the flow.validate benchmark: a dealer's shipments (one line per shipment, a
fifth of the sold units serial-tracked), hospitals, and a sell-through CSV of N rows in
which a few percent are bad in known ways, each bad row labelled with the code the
validator must report for it. Deterministic for a seed."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from stdnum import ean

DEALER = "bench-dealer"
OTHER_DEALER = "bench-other"
HEADER = ["销售日期", "医院名称", "科室", "产品编码", "UDI", "批号", "有效期", "序列号", "数量",
          "金额"]
PERIOD = (date(2026, 3, 1), date(2026, 3, 31))
SHIP_DATE = date(2026, 2, 1)
EXPIRY = date(2028, 12, 31)
GS = "\x1d"
DISTRICTS = ["黄浦", "徐汇", "长宁", "静安", "普陀", "虹口", "杨浦", "闵行", "宝山", "嘉定",
             "浦东", "金山", "松江", "青浦", "奉贤", "崇明"]
DISTRICT_CODES = ["310101", "310104", "310105", "310106", "310107", "310109", "310110",
                  "310112", "310113", "310114", "310115", "310116", "310117", "310118",
                  "310120", "310151"]
# Bad kinds and the code each must be reported with.
BAD_KINDS = {
    "bad_date": "BAD_DATE",
    "future_date": "SOLD_IN_FUTURE",
    "outside_period": "OUTSIDE_PERIOD",
    "bad_quantity": "BAD_QUANTITY",
    "unknown_hospital": "UNKNOWN_HOSPITAL",
    "udi_check_digit": "UDI_CHECK_DIGIT",
    "unknown_batch": "BATCH_NOT_RECEIVED",
    "diverted": "DIVERTED",
    "exceeds_stock": "EXCEEDS_STOCK",
    "duplicate_row": "DUPLICATE_ROW",
    "duplicate_serial": "DUPLICATE_SERIAL",
}


def gtin_of(number: int) -> str:
    body = f"0690{number:09d}"
    return body + ean.calc_check_digit(body)


@dataclass
class FlowData:
    rows: int
    products: list[tuple[str, str]]                       # (code, gtin)
    hospitals: list[tuple[str, str, str]]                 # (id, name, division)
    # shipment lines: (shipment id, dealer, code, gtin, batch, quantity, serials)
    shipments: list[tuple] = field(default_factory=list)
    csv: bytes = b""
    bad: dict[int, str] = field(default_factory=dict)     # row number → expected code

    @property
    def shipment_lines(self) -> int:
        return len(self.shipments)


def generate(rows: int, seed: int = 7, bad_share: float = 0.03) -> FlowData:
    rng = random.Random(seed)
    products = [(f"P{n:04d}", gtin_of(n)) for n in range(1, 501)]
    hospitals = [(f"h{n}", f"上海市{DISTRICTS[n % 16]}区第{n}人民医院", DISTRICT_CODES[n % 16])
                 for n in range(1, 5001)]
    data = FlowData(rows, products, hospitals)
    # Plain batches: one shipment line each, enough stock for every sale of it.
    keys = max(1, rows // 5)
    plain = [(products[i % len(products)], f"B{i:07d}") for i in range(keys)]
    for index, ((code, gtin), batch) in enumerate(plain):
        data.shipments.append((f"S{index:08d}", DEALER, code, gtin, batch, 1000, ()))
    # Serial-tracked units: a fifth of the rows sell one serial each.
    serial_rows = rows // 5
    serial_batches = max(1, serial_rows // 50)
    serials: list[tuple[str, str, str, str]] = []
    for index in range(serial_batches):
        code, gtin = products[index % len(products)]
        batch = f"S{index:06d}"
        numbers = tuple(f"SN{index:06d}{k:03d}" for k in range(50))
        data.shipments.append((f"T{index:08d}", DEALER, code, gtin, batch, len(numbers),
                               numbers))
        serials += [(code, gtin, batch, number) for number in numbers]
    rng.shuffle(serials)
    # Shipped to another dealer only: selling them is a diversion.
    for index in range(20):
        code, gtin = products[index]
        data.shipments.append((f"X{index:06d}", OTHER_DEALER, code, gtin, f"X{index:05d}",
                               100, ()))
    # Up to a million shipment lines in all, as the benchmark asks: the rest are other
    # batches of this dealer that the file does not touch.
    filler = max(0, min(rows, 1_000_000) - len(data.shipments))
    for index in range(filler):
        code, gtin = products[index % len(products)]
        data.shipments.append((f"F{index:08d}", DEALER, code, gtin, f"F{index:07d}", 10, ()))

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    serial_iter = iter(serials)
    days = [(PERIOD[0] + timedelta(days=d)) for d in range(25)]
    written: list[list[str]] = []
    bad_kinds = list(BAD_KINDS)
    for number in range(2, rows + 2):
        kind = bad_kinds[rng.randrange(len(bad_kinds))] if rng.random() < bad_share else ""
        day = days[rng.randrange(len(days))]
        _, hospital, _ = hospitals[rng.randrange(len(hospitals))]
        if number % 5 == 0:
            code, gtin, batch, serial = next(serial_iter, (None, None, None, None))
            if code is None:
                code, gtin, batch, serial = serials[0]
            quantity = 1
            udi = f"]d201{gtin}17{EXPIRY:%y%m%d}10{batch}{GS}21{serial}"
        else:
            (code, gtin), batch = plain[rng.randrange(len(plain))]
            serial = ""
            quantity = rng.randint(1, 3)
            udi = f"(01){gtin}(17){EXPIRY:%y%m%d}(10){batch}"
        row = [day.isoformat(), hospital, "心内科", code, udi, batch, EXPIRY.isoformat(),
               serial, str(quantity), f"{quantity * 125}.00"]
        if kind == "bad_date":
            row[0] = "3月某日"
        elif kind == "future_date":
            row[0] = "2099-01-01"
        elif kind == "outside_period":
            row[0] = "2026-02-15"
        elif kind == "bad_quantity":
            row[8] = "若干"
        elif kind == "unknown_hospital":
            row[1] = f"不存在的诊疗机构{number}号"
        elif kind == "udi_check_digit":
            wrong = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
            row[4] = row[4].replace(gtin, wrong)
        elif kind == "unknown_batch":
            row[5] = f"NO{number}"
            row[4] = f"(01){gtin}(17){EXPIRY:%y%m%d}(10)NO{number}"
            row[7] = ""
            row[8] = "1"
        elif kind == "diverted":
            index = rng.randrange(20)
            code, gtin = products[index]
            row[3], row[5], row[7], row[8] = code, f"X{index:05d}", "", "1"
            row[4] = f"(01){gtin}(17){EXPIRY:%y%m%d}(10)X{index:05d}"
        elif kind == "exceeds_stock":
            (code, gtin), batch = plain[rng.randrange(len(plain))]
            row[0] = PERIOD[1].isoformat()  # last in the file's order: only it exceeds
            row[3], row[5], row[7], row[8] = code, batch, "", "5000"
            row[4] = f"(01){gtin}(17){EXPIRY:%y%m%d}(10){batch}"
        elif kind == "duplicate_row" and written:
            row = list(written[rng.randrange(len(written))])
            if row[7]:
                kind = "duplicate_serial"
        elif kind == "duplicate_serial" and written:
            earlier = next((r for r in reversed(written[-200:]) if r[7]), None)
            if earlier is None:
                kind = ""
            else:
                row = list(earlier)
                row[0] = PERIOD[1].isoformat() if earlier[0] != PERIOD[1].isoformat() \
                    else PERIOD[0].isoformat()
        else:
            kind = ""
        if kind:
            data.bad[number] = BAD_KINDS[kind]
        else:
            written.append(row)
        writer.writerow(row)
    data.csv = out.getvalue().encode()
    return data
