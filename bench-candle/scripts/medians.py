#!/usr/bin/env python3
"""Prints the median of every bench of the last `cargo bench` run (criterion's
target/criterion/GROUP/BENCH/new/estimates.json), in milliseconds, with its
95% confidence interval and the ratios to `tapeless` in the same group.

    python3 scripts/medians.py [CRITERION_DIR]     (default: target/criterion)
"""
import glob
import json
import os
import sys

base = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "criterion")
for group in ["mlp_step", "mlp_grad", "cnn_step", "cnn_grad"]:
    rows = {}
    for path in sorted(glob.glob(os.path.join(base, group, "*", "new", "estimates.json"))):
        name = path.split(os.sep)[-3]
        med = json.load(open(path))["median"]
        ci = med["confidence_interval"]
        rows[name] = (med["point_estimate"] / 1e6, ci["lower_bound"] / 1e6, ci["upper_bound"] / 1e6)
    ours = rows.get("tapeless", (None,))[0]
    for name, (m, lo, hi) in rows.items():
        ratio = f"  {m / ours:5.2f}x tapeless" if ours else ""
        print(f"{group}/{name:<20} median {m:9.4f} ms  [{lo:.4f}, {hi:.4f}]{ratio}")
