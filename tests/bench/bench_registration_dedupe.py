"""registration.dedupe: duplicate checks over gRPC against a large customer master.

1,000,000 customers (``--quick``: 20,000) over the real cities with a Zipf-like skew are
written straight into the registration service's database (SQLite), the service is
started as a process (it loads its fuzzy-name index at start), and 10,000 labelled
queries (``--quick``: 1,000; see dedupe_data.py) are sent one at a time as
CheckDuplicates calls. A query counts as a hit when its best candidate is the customer
it means; precision = hits / queries answered with any candidate, recall = hits / queries
that mean a known customer. Both are also reported per category of query (spelling,
traditional script, abbreviation, alias, address, long/short form, other city); for the
categories of new names, ``specificity`` is the share answered "new".

Baseline, same data, same run: brute force — for every query, the exact normalized-name
lookup plus the same rapidfuzz-based similarity against every customer name of the
query's city, in process (no gRPC, no database), taking turns with our calls query by
query so both meet the same load on a shared machine.
The ratio is baseline p99 / our p99 (higher is better), at the recalls reported side by
side."""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc
from qudao.registration.v1 import registration_pb2 as pb
from qudao.registration.v1 import registration_pb2_grpc

from services.registration.bootstrap import MIGRATIONS
from shared.db import migrate
from shared.divisions import city_of
from shared.names.address import address_key
from shared.names.matching import (
    DEFAULT_FUZZY_THRESHOLD_BPS,
    features,
    similarity,
)
from shared.text import normalize_name
from tests.bench.common import ADMIN_PASSWORD, ProcessSuite, Result, latency_summary
from tests.bench.dedupe_data import NEGATIVE, POSITIVE, Generator, Query

NAME = "registration.dedupe"


def build_database(path: Path, customers) -> dict[str, list[tuple[str, str]]]:
    """Write the customers; return city → [(id, normalized name)] for the baseline."""
    migrate(MIGRATIONS, f"sqlite+aiosqlite:///{path}")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    by_city: dict[str, list[tuple[str, str]]] = {}
    seen: set[tuple[str, str]] = set()
    rows, alias_rows = [], []
    for customer in customers:
        normalized = normalize_name(customer.name)
        city = city_of(customer.division_code)
        if not normalized or (city, normalized) in seen:
            continue
        seen.add((city, normalized))
        by_city.setdefault(city, []).append((customer.id, normalized))
        rows.append((customer.id, customer.name, normalized, json.dumps(customer.aliases),
                     None, customer.address, customer.division_code, 0, city, 1, "", "[]",
                     now, now, "bench", address_key(customer.address, customer.division_code)))
        alias_rows += [(city, normalize_name(alias), customer.id, "bench")
                       for alias in customer.aliases]
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO customers (id, name, normalized_name, aliases, credit_code, address, "
            "division_code, division_overridden, city_code, customer_type, grade, departments,"
            " created_at, updated_at, created_by, address_key) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        connection.executemany(
            "INSERT OR IGNORE INTO customer_aliases (city_code, normalized_alias, customer_id,"
            " source) VALUES (?, ?, ?, ?)", alias_rows)
    connection.close()
    return by_city


def score(predictions: list[str | None], queries: list[Query]) -> tuple[float, float]:
    hits = sum(1 for p, q in zip(predictions, queries, strict=True)
               if p is not None and p == q.expected_id)
    answered = sum(1 for p in predictions if p is not None)
    known = sum(1 for q in queries if q.expected_id is not None)
    return (hits / answered if answered else 1.0), (hits / known if known else 1.0)


def by_category(predictions: list[str | None], queries: list[Query]) -> dict[str, dict]:
    """Per category of query: its count and recall and precision (a category of known
    customers), or specificity — the share answered "new" (a category of new names)."""
    table: dict[str, dict] = {}
    for category in (*POSITIVE, *NEGATIVE):
        pairs = [(p, q) for p, q in zip(predictions, queries, strict=True)
                 if q.category == category]
        if not pairs:
            continue
        if category in POSITIVE:
            precision, recall = score([p for p, _ in pairs], [q for _, q in pairs])
            table[category] = {"queries": len(pairs), "recall": round(recall, 4),
                               "precision": round(precision, 4)}
        else:
            new = sum(1 for p, _ in pairs if p is None)
            table[category] = {"queries": len(pairs),
                               "specificity": round(new / len(pairs), 4)}
    return table


class BruteForce:
    """The baseline: every name of the query's city, scored one by one."""

    def __init__(self, by_city: dict[str, list[tuple[str, str]]]) -> None:
        self.cities = {city: [(cid, features(name)) for cid, name in names]
                       for city, names in by_city.items()}
        self.exact = {(city, name): cid for city, names in by_city.items()
                      for cid, name in names}

    def check(self, query: Query) -> str | None:
        city = city_of(query.division_code)
        normalized = normalize_name(query.name)
        exact = self.exact.get((city, normalized))
        if exact is not None:
            return exact
        wanted = features(normalized)
        best, best_score = None, DEFAULT_FUZZY_THRESHOLD_BPS - 1
        for cid, candidate in self.cities.get(city, ()):
            value = similarity(wanted, candidate)
            if value > best_score:
                best, best_score = cid, value
        return best


async def run(workdir: Path, quick: bool) -> Result:
    total = 20_000 if quick else 1_000_000
    query_count = 1_000 if quick else 10_000
    baseline_sample = query_count
    generator = Generator()
    started = time.perf_counter()
    customers = generator.customers(total)
    queries = generator.queries(customers, query_count)
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    by_city = await asyncio.to_thread(build_database, workdir / "registration.db", customers)
    stored = sum(len(v) for v in by_city.values())
    print(f"  {stored} customers in {len(by_city)} cities, {len(queries)} queries "
          f"({time.perf_counter() - started:.1f}s to generate and store)", flush=True)
    del customers
    gc.collect()
    gc.freeze()  # the load generator's own data must not stall it with full collections

    brute = await asyncio.to_thread(BruteForce, by_city)
    gc.collect()
    gc.freeze()
    suite = ProcessSuite(workdir, services=("identity", "registration"))
    loading = time.perf_counter()
    await suite.start()
    load_seconds = time.perf_counter() - loading
    samples_ms: list[float] = []
    predictions: list[str | None] = []
    baseline_ms: list[float] = []
    baseline_predictions: list[str | None] = []
    try:
        async with grpc.aio.insecure_channel(suite.addr("identity")) as channel:
            token = (await identity_pb2_grpc.IdentityServiceStub(channel).Login(
                identity_pb2.LoginRequest(username="admin", password=ADMIN_PASSWORD))
            ).access_token
        metadata = (("authorization", f"Bearer {token}"),)
        async with grpc.aio.insecure_channel(suite.addr("registration")) as channel:
            stub = registration_pb2_grpc.RegistrationServiceStub(channel)
            for query in queries[:50]:  # warm up
                await stub.CheckDuplicates(pb.CheckDuplicatesRequest(
                    name=query.name, division_code=query.division_code), metadata=metadata)
            # Ours and the baseline take turns query by query, so both meet the same
            # (shared, noisy) machine.
            for index, query in enumerate(queries):
                began = time.perf_counter()
                response = await stub.CheckDuplicates(pb.CheckDuplicatesRequest(
                    name=query.name, division_code=query.division_code,
                    address=query.address), metadata=metadata)
                samples_ms.append((time.perf_counter() - began) * 1000)
                predictions.append(response.candidates[0].customer.id
                                   if response.verdict != pb.DUPLICATE_VERDICT_NONE
                                   and response.candidates else None)
                if index < baseline_sample:
                    began = time.perf_counter()
                    baseline_predictions.append(brute.check(query))
                    baseline_ms.append((time.perf_counter() - began) * 1000)
    finally:
        await suite.stop()
    precision, recall = score(predictions, queries)
    ours = latency_summary(samples_ms)
    print(f"  ours: p99 {ours['p99_ms']} ms, precision {precision:.4f}, recall {recall:.4f}",
          flush=True)
    categories = by_category(predictions, queries)
    for category, figures in categories.items():
        print(f"    {category:22s} " + ", ".join(f"{k} {v}" for k, v in figures.items()),
              flush=True)
    base_categories = by_category(baseline_predictions, queries[:baseline_sample])
    sample = queries[:baseline_sample]
    base = latency_summary(baseline_ms)
    base_precision, base_recall = score(baseline_predictions, sample)
    sample_precision, sample_recall = score(predictions[:baseline_sample], sample)
    print(f"  brute force: p99 {base['p99_ms']} ms, precision {base_precision:.4f}, "
          f"recall {base_recall:.4f} on {len(sample)} queries", flush=True)
    largest = max(len(v) for v in by_city.values())
    return Result(
        name=NAME,
        params={"customers": stored, "queries": len(queries), "cities": len(by_city),
                "largest_city": largest, "threshold_bps": DEFAULT_FUZZY_THRESHOLD_BPS,
                "quick": quick},
        value=ours["p99_ms"], unit="ms",
        baseline="bruteforce_rapidfuzz_same_city_in_process",
        baseline_value=base["p99_ms"], baseline_unit="ms",
        ratio=round(base["p99_ms"] / ours["p99_ms"], 2) if ours["p99_ms"] else 0.0,
        ratio_meaning="baseline_p99 / our_p99: how many times faster our gRPC duplicate check "
                      "is than brute-force scoring of every same-city name (higher is better)",
        extra={**ours, "precision": round(precision, 4), "recall": round(recall, 4),
               "categories": categories, "baseline_categories": base_categories,
               "baseline": base, "baseline_precision": round(base_precision, 4),
               "baseline_recall": round(base_recall, 4), "baseline_sample": len(sample),
               "ours_on_baseline_sample": {"precision": round(sample_precision, 4),
                                           "recall": round(sample_recall, 4)},
               "service_start_with_index_load_s": round(load_seconds, 1)},
    )
