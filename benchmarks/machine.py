"""What the benchmarks print about the machine they ran on."""

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


#: where :func:`record` appends (``EQFREE_BENCH_JSON`` overrides it, e.g. for a trial run)
RESULTS = Path(os.environ.get("EQFREE_BENCH_JSON", Path(__file__).parents[1] / "build" / "bench.json"))


def record(benchmark: str, figure: str, value: float, unit: str, *, peer: str | None = None,
           peer_value: float | None = None, ratio: float | None = None, target: str | None = None,
           met: bool | None = None) -> None:
    """Append one measured figure to build/bench.json (one JSON object per line; ``make bench`` starts it
    afresh and ``benchmarks/table.py`` renders it). ``ratio`` is eqfree against ``peer`` (or the floor)
    measured in the same run, oriented so that above 1 is better; ``target`` states what the issue asks and
    ``met`` whether this run meets it (None: no target, or not decided by this figure alone). The
    one-minute load average is stored beside it (other work on the cores slows every timing)."""
    import json

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    number = lambda v: None if v is None else float(v)  # noqa: E731  (numpy scalars are not JSON)
    row = {"benchmark": benchmark, "figure": figure, "value": number(value), "unit": unit, "peer": peer,
           "peer_value": number(peer_value), "ratio": number(ratio), "target": target,
           "met": None if met is None else bool(met), "machine": cpu_model(),
           "load": os.getloadavg()[0]}
    with RESULTS.open("a") as out:
        out.write(json.dumps(row) + "\n")
