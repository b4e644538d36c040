#!/usr/bin/env python3
"""Compare tools' timings from GradBench log files (``gradbench run -o``).

usage: table.py LOGDIR EVAL FUNCTION [TOOL ...]

Reads LOGDIR/EVAL/TOOL.jsonl for each tool (default: tapeless manual adol-c),
takes the median of the "evaluate" timings of every FUNCTION evaluation, and
prints a Markdown table with one row per input (the eval's description), the
medians in milliseconds and the first tool's time divided by each other
tool's (above 1: the first tool is slower). Inputs a
tool did not validate (analysis "valid": false) are marked with ✗.
"""

import json
import math
import statistics
import sys
from pathlib import Path


def evaluations(path, function):
    """{description: (median ms, valid)} for `function` in one log."""
    messages, out = {}, {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if "message" in entry:
            m = entry["message"]
            messages[m["id"]] = m
            if m.get("kind") == "analysis" and m["of"] in out.get("_ids", {}):
                desc = out["_ids"][m["of"]]
                ms, _ = out[desc]
                out[desc] = (ms, m["valid"])
        elif "response" in entry:
            r = entry["response"]
            m = messages.get(r["id"], {})
            if m.get("kind") != "evaluate" or m.get("function") != function:
                continue
            if not r.get("success"):
                continue
            ts = [t["nanoseconds"] for t in r.get("timings", []) if t["name"] == "evaluate"]
            desc = m.get("description", str(m["id"]))
            out[desc] = (statistics.median(ts) / 1e6, None)
            out.setdefault("_ids", {})[m["id"]] = desc
    out.pop("_ids", None)
    return out


def main():
    logdir, ev, function = sys.argv[1:4]
    tools = sys.argv[4:] or ["tapeless", "manual", "adol-c"]
    runs = {}
    for t in tools:
        p = Path(logdir) / ev / f"{t}.jsonl"
        if p.exists():
            runs[t] = evaluations(p, function)
    tools = [t for t in tools if t in runs]
    base = tools[0]
    print(f"| {ev} `{function}` | " + " | ".join(f"{t} (ms)" for t in tools)
          + " | " + " | ".join(f"{base} ÷ {t}" for t in tools[1:]) + " |")
    print("|---" * (2 * len(tools)) + "|")
    logs = {t: [] for t in tools[1:]}
    for desc in runs[base]:
        cells, ratios = [], []
        for t in tools:
            ms, valid = runs[t].get(desc, (None, None))
            mark = " ✗" if valid is False else ""
            cells.append("—" if ms is None else f"{ms:.3f}{mark}")
            if t != base:
                b = runs[base][desc][0]
                ratios.append("—" if ms is None or ms == 0 else f"{b / ms:.2f}")
                if ms and b:
                    logs[t].append(math.log(b / ms))
        print(f"| {desc} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    gm = [f"**{math.exp(sum(v) / len(v)):.2f}**" if v else "—" for v in logs.values()]
    print("| geometric mean | " + " | ".join("" for _ in tools) + " | " + " | ".join(gm) + " |")


if __name__ == "__main__":
    main()
