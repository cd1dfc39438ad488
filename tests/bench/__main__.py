"""``make bench [BENCH=name]``: run benchmarks, print a table, merge the results into
var/bench/results.json (see tests/bench/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path

from tests.bench.common import Result, write_results


def discover() -> dict[str, object]:
    """Every ``tests/bench/bench_*.py`` module, by its NAME."""
    package = Path(__file__).parent
    modules = {}
    for info in pkgutil.iter_modules([str(package)]):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"tests.bench.{info.name}")
            modules[module.NAME] = module
    return modules


def print_table(results: list[Result]) -> None:
    print(f"{'benchmark':<24}{'value':>14} {'unit':<8}{'baseline':>16} {'ratio':>8}  meaning")
    for r in results:
        print(f"{r.name:<24}{r.value:>14.2f} {r.unit:<8}{r.baseline_value:>16.2f} "
              f"{r.ratio:>8.2f}  {r.ratio_meaning}")


def main(argv: list[str]) -> int:
    benchmarks = discover()
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--only", default="", help="comma-separated names: "
                        + ", ".join(sorted(benchmarks)))
    parser.add_argument("--quick", action="store_true", help="small sizes for a quick look")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or sorted(benchmarks)
    unknown = [n for n in names if n not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(benchmarks)}")
    results: list[Result] = []
    for name in names:
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"qudao-bench-{name}-") as tmp:
            outcome = asyncio.run(benchmarks[name].run(Path(tmp), quick=args.quick))
        results.extend(outcome if isinstance(outcome, list) else [outcome])
        write_results(results)
    print_table(results)
    print("written to var/bench/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
