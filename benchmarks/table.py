"""build/bench.json → build/bench.md: the benchmark table (figure, value, peer, ratio, target, machine)."""

import json
import os

from machine import RESULTS


def number(value) -> str:
    return "" if value is None else f"{value:.3g}"


def main() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    machine = rows[0]["machine"] if rows else "unknown"
    lines = [f"Measured on {machine}, {os.cpu_count()} logical CPUs.", "",
             "| benchmark | figure | eqfree | peer or floor | peer | ratio (>1 better) | target |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['benchmark']} | {r['figure']} | {number(r['value'])} {r['unit']} | {r['peer'] or ''} | "
                     f"{number(r['peer_value'])} | {number(r['ratio'])} | {r['target'] or ''} |")
    out = RESULTS.with_suffix(".md")
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
