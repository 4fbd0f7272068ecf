"""What the benchmarks print about the machine they ran on."""

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


RESULTS = Path(__file__).parents[1] / "build" / "bench.json"


def record(benchmark: str, figure: str, value: float, unit: str, *, peer: str | None = None,
           peer_value: float | None = None, ratio: float | None = None, target: str | None = None) -> None:
    """Append one measured figure to build/bench.json (one JSON object per line; ``make bench`` starts it
    afresh and ``benchmarks/table.py`` renders it). ``ratio`` is eqfree against ``peer`` (or the floor)
    measured in the same run, oriented so that above 1 is better; ``target`` states what the issue asks."""
    import json

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    row = {"benchmark": benchmark, "figure": figure, "value": value, "unit": unit, "peer": peer,
           "peer_value": peer_value, "ratio": ratio, "target": target, "machine": cpu_model()}
    with RESULTS.open("a") as out:
        out.write(json.dumps(row) + "\n")
