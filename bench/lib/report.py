#!/usr/bin/env python3
"""Medians of bench/run's figures as one table, printed and written into a RESULTS file.

usage: report.py RESULTS_TSV MACHINE_TXT COMMANDS_TXT OUT_MD TITLE

RESULTS_TSV holds "row KEY LABEL" lines, in table order, and "value KEY COLUMN RUN VALUE"
lines (tab-separated), COLUMN being sombra, postfix or ceiling. Whatever OUT_MD held from its
"## What was tried" heading on is kept: that history is written by hand.
"""
import statistics
import sys

results, machine, commands, out, title = sys.argv[1:6]
HISTORY = "## What was tried"

rows, values = [], {}
with open(results) as f:
    for line in f:
        fields = line.rstrip("\n").split("\t")
        if fields[0] == "row":
            rows.append((fields[1], fields[2]))
        elif fields[0] == "value":
            values.setdefault((fields[1], fields[2]), []).append(fields[4])


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def median(key, column):
    """The median when every run gave a number; otherwise each distinct outcome with its count."""
    runs = values.get((key, column), [])
    if not runs:
        return None, ""
    numbers = [number(v) for v in runs]
    if all(n is not None for n in numbers):
        m = statistics.median(numbers)
        return m, fmt(m)
    counts = {v: runs.count(v) for v in runs}
    return None, "; ".join(f"{v} ({n} of {len(runs)})" if len(counts) > 1 else v for v, n in counts.items())


def fmt(x):
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def every_run(key, column):
    return ", ".join(fmt(n) if (n := number(v)) is not None else v for v in values.get((key, column), []))


table = ["| scenario | Sombra | Postfix | ratio | ceiling |", "|---|--:|--:|--:|--:|"]
for key, label in rows:
    s, s_text = median(key, "sombra")
    p, p_text = median(key, "postfix")
    _, c_text = median(key, "ceiling")
    ratio = f"{s / p:.2f}" if s is not None and p else ""
    cells = [label, s_text, p_text, ratio, c_text]
    table.append("| " + " | ".join(cell or "n/a" for cell in cells) + " |")
table = "\n".join(table)
print(table)

# The spread shows how far a median can be trusted on a shared machine.
runs = ["| scenario | Sombra | Postfix | ceiling |", "|---|---|---|---|"]
for key, label in rows:
    cells = [every_run(key, column) for column in ("sombra", "postfix", "ceiling")]
    runs.append(f"| {label.split('.')[0]} | " + " | ".join(cell or "n/a" for cell in cells) + " |")
runs = "\n".join(runs)

try:
    with open(out) as f:
        old = f.read()
    history = old[old.index(HISTORY):] if HISTORY in old else ""
except FileNotFoundError:
    history = ""
if not history:
    history = HISTORY + "\n\nThe optimization history: each change, what it gave, and what did not help.\n"

with open(machine) as f:
    machine_text = f.read().strip()
with open(commands) as f:
    commands_text = f.read().strip()
with open(out, "w") as f:
    f.write(f"""# {title}

Written by `bench/run`; see README.md, "Benchmarks". Each figure is the median of the runs
(Sombra and Postfix alternating); "ratio" is Sombra ÷ Postfix. Rates are higher-is-better,
memory is lower-is-better. "ceiling" is smtp-sink's own rate with smtp-source pointed straight
at it, the most this machine can do with the same load.

{table}

Targets of issue 5: ratio of row 1 ≥ 1.5, of row 2 ≥ 1.2; row 4 below 64 MiB; row 5a below
500 MiB with row 5d answered; row 6b ≥ 200 MB/s.

Every run, in order (the table above has their medians):

{runs}

Memory: Sombra is one process, its figure is VmRSS (row 4: VmHWM, reset through clear_refs
before the message). Postfix is many processes, its figure is their summed Pss (shared pages
split among the processes mapping them), sampled every 20 ms.

## Machine

{machine_text}

## Commands

{commands_text}

{history}""")
