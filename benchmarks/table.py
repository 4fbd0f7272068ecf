"""build/bench.json → build/bench.md: the benchmark table (figure, value, peer, ratio, target, machine, load).

    python benchmarks/table.py [--readme]

``--readme`` also puts the table into README.md between the lines :data:`START` and :data:`END` (added
before the License section the first time); nothing else of the README changes.
"""

import argparse
import json
import os
from pathlib import Path

from machine import RESULTS

README = Path(__file__).parents[1] / "README.md"
START = "<!-- benchmark table: written by `make bench` (benchmarks/table.py --readme); do not edit by hand -->"
END = "<!-- end of the benchmark table -->"


def number(value) -> str:
    return "" if value is None else f"{value:.3g}"


def cell(text) -> str:
    """``text`` safe inside a markdown table cell."""
    return "" if text is None else str(text).replace("|", "\\|")


def verdict(met) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


def table(rows: list[dict]) -> str:
    machines = sorted({r["machine"] for r in rows}) or ["unknown"]
    loads = [r["load"] for r in rows if r.get("load") is not None]
    load = f"; one-minute load average {min(loads):.1f}–{max(loads):.1f} while measuring" if loads else ""
    lines = [f"Measured on {', '.join(machines)}, {os.cpu_count()} logical CPUs{load}. Ratios are eqfree against "
             "the peer or floor measured in the same run, above 1 better.", "",
             "| benchmark | figure | eqfree | peer or floor | peer | ratio | target | met | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {cell(r['benchmark'])} | {cell(r['figure'])} | {number(r['value'])} {cell(r['unit'])} | "
                     f"{cell(r['peer'])} | {number(r['peer_value'])} | {number(r['ratio'])} | {cell(r['target'])} | "
                     f"{verdict(r.get('met'))} | {number(r.get('load'))} |")
    return "\n".join(lines) + "\n"


def into_readme(text: str) -> None:
    """Replace the README's table section by ``text`` (create it before ``## License`` when missing)."""
    readme = README.read_text()
    section = f"{START}\n{text}{END}"
    if START in readme and END in readme:
        before, rest = readme.split(START, 1)
        readme = before + section + rest.split(END, 1)[1]
    else:
        head, tail = readme.split("## License", 1) if "## License" in readme else (readme, None)
        readme = head + f"## Benchmarks\n\n{section}\n\n" + (f"## License{tail}" if tail is not None else "")
    README.write_text(readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="also write the table into README.md's section")
    args = parser.parse_args()
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    text = table(rows)
    out = RESULTS.with_suffix(".md")
    out.write_text(text)
    print(text)
    if args.readme:
        into_readme(text)
        print(f"README.md: table section updated ({len(rows)} rows)")


if __name__ == "__main__":
    main()
