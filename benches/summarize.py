#!/usr/bin/env python3
"""Summarizes the criterion runs of benches/run.sh as the Markdown tables of BENCHMARKS.md.

usage: summarize.py OUT_DIR RUNS

For every benchmark: the median of the per-run medians, the spread (lowest and highest
per-run median) and the 95% confidence interval criterion gave for the median in each run.
Ratios are taken within each run (the two figures come from the same run) and reported as
the median ratio over the runs with its range. Standard library only.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone


def load_run(root):
    """{"group/function": (median_ns, ci_low_ns, ci_high_ns)} for one criterion home."""
    results = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        median = est["median"]
        ci = median["confidence_interval"]
        results[bench["full_id"]] = (
            median["point_estimate"],
            ci["lower_bound"],
            ci["upper_bound"],
        )
    return results


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3f} µs"
    return f"{ns:.1f} ns"


def machine():
    model, flags = "unknown", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    sha_ni = "yes" if "sha_ni" in flags.split() else "no"
    try:
        rustc = subprocess.run(
            ["rustc", "-V"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        rustc = "rustc: unknown"
    return model, sha_ni, os.cpu_count(), rustc


# (label, numerator, denominator, denominator multiplier, target, meaning)
RATIOS = [
    ("verify ±1 wrong, keyed per call / totp-rs 6 check",
     "verify_pm1_wrong/totp-mfa keyed", "verify_pm1_wrong/totp-rs 6", 1, 0.75,
     "the secret keyed inside every call, every step computed and compared in constant time, "
     "against totp-rs re-keying HMAC per step"),
    ("verify ±1 wrong, cached keyed state / totp-rs 6 check",
     "verify_pm1_wrong/totp-mfa cached", "verify_pm1_wrong/totp-rs 6", 1, 0.6,
     "one long-lived Totp checked repeatedly"),
    ("verify ±1 wrong, keyed / 8 SHA-1 compressions",
     "verify_pm1_wrong/totp-mfa keyed", "floor/sha1 compress 1 block", 8, 1.5,
     "how close to the floor: keying is 2 compressions, each of the 3 steps 2 more"),
    ("verify ±1 wrong, cached / 6 SHA-1 compressions",
     "verify_pm1_wrong/totp-mfa cached", "floor/sha1 compress 1 block", 6, 1.5,
     "3 steps of 2 compressions each"),
    ("generate, cached / totp-rs 6 generate",
     "generate/totp-mfa cached", "generate/totp-rs 6", 1, 0.75,
     "Totp::generate on a Totp made once, as totp-rs's Totp is made once"),
    ("generate, keyed per call / totp-rs 6 generate",
     "generate/totp-mfa keyed", "generate/totp-rs 6", 1, None,
     "Totp::new + generate: the same 4 compressions totp-rs does per call"),
    ("generate, cached / 2 SHA-1 compressions",
     "generate/totp-mfa cached", "floor/sha1 compress 1 block", 2, None, ""),
    ("verify ±1 right, keyed / totp-rs 6",
     "verify_pm1_right/totp-mfa keyed", "verify_pm1_right/totp-rs 6", 1, None,
     "totp-rs stops at the match (2 of 3 steps); totp-mfa computes all 3"),
    ("verify ±1 right, cached / totp-rs 6",
     "verify_pm1_right/totp-mfa cached", "verify_pm1_right/totp-rs 6", 1, None, ""),
    ("verify ±2 wrong, keyed / totp-rs 6",
     "verify_pm2_wrong/totp-mfa keyed", "verify_pm2_wrong/totp-rs 6", 1, None,
     "5 steps: 12 compressions against totp-rs's 20"),
    ("verify ±2 wrong, cached / totp-rs 6",
     "verify_pm2_wrong/totp-mfa cached", "verify_pm2_wrong/totp-rs 6", 1, None, ""),
    ("verify ±1 wrong, keyed / totp-lite 2 loop",
     "verify_pm1_wrong/totp-mfa keyed", "verify_pm1_wrong/totp-lite 2", 1, None,
     "totp-lite formats a String per step"),
    ("SHA-256 verify ±1 wrong, keyed / totp-rs 6",
     "sha256_verify_pm1_wrong/totp-mfa keyed", "sha256_verify_pm1_wrong/totp-rs 6", 1, None,
     ""),
    ("SHA-256 verify ±1 wrong, cached / totp-rs 6",
     "sha256_verify_pm1_wrong/totp-mfa cached", "sha256_verify_pm1_wrong/totp-rs 6", 1,
     None, ""),
    ("SHA-256 verify ±1 wrong, keyed / 8 SHA-256 compressions",
     "sha256_verify_pm1_wrong/totp-mfa keyed", "floor/sha256 compress 1 block", 8, None, ""),
    ("SHA-512 verify ±1 wrong, keyed / totp-rs 6",
     "sha512_verify_pm1_wrong/totp-mfa keyed", "sha512_verify_pm1_wrong/totp-rs 6", 1, None,
     ""),
    ("SHA-512 verify ±1 wrong, cached / totp-rs 6",
     "sha512_verify_pm1_wrong/totp-mfa cached", "sha512_verify_pm1_wrong/totp-rs 6", 1,
     None, ""),
    ("SHA-512 verify ±1 wrong, keyed / 8 SHA-512 compressions",
     "sha512_verify_pm1_wrong/totp-mfa keyed", "floor/sha512 compress 1 block", 8, None, ""),
]


def main():
    out, runs = sys.argv[1], int(sys.argv[2])
    per_run = []
    for i in range(1, runs + 1):
        root = os.path.join(out, f"criterion-{i}")
        if os.path.isdir(root):
            per_run.append(load_run(root))
    if not per_run:
        sys.exit(f"no criterion results under {out}")

    model, sha_ni, cpus, rustc = machine()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Machine: {model}, {cpus} CPUs, SHA-NI: {sha_ni}; {platform.system()} "
          f"{platform.release()}; {rustc}. Date: {now}. "
          f"Criterion runs: {len(per_run)}.\n")

    cond = os.path.join(out, "conditions.txt")
    if os.path.exists(cond):
        print("Conditions (load average at the start and end of each run; other heavy "
              "processes seen):\n")
        print("```")
        with open(cond) as f:
            print(f.read().rstrip())
        print("```\n")

    names = sorted(set().union(*per_run))
    print("| benchmark | median | spread over runs (min – max of run medians) | "
          "criterion 95% CI of the median, per run |")
    print("|---|---:|---|---|")
    for name in names:
        vals = [r[name] for r in per_run if name in r]
        meds = [v[0] for v in vals]
        cis = "; ".join(f"{fmt_ns(lo)} – {fmt_ns(hi)}" for _, lo, hi in vals)
        print(f"| {name} | {fmt_ns(statistics.median(meds))} | "
              f"{fmt_ns(min(meds))} – {fmt_ns(max(meds))} | {cis} |")

    print()
    print("| ratio (same run) | median | range over runs | target | met? | meaning |")
    print("|---|---:|---|---:|---|---|")
    for label, num, den, mult, target, meaning in RATIOS:
        ratios = [r[num][0] / (mult * r[den][0]) for r in per_run if num in r and den in r]
        if not ratios:
            continue
        med = statistics.median(ratios)
        if target is None:
            tgt, met = "—", "—"
        else:
            tgt = f"≤ {target:.2f}"
            if max(ratios) <= target:
                met = "met (every run)"
            elif med <= target:
                met = "met (median; not every run)"
            else:
                met = "**missed**"
        print(f"| {label} | {med:.3f} | {min(ratios):.3f} – {max(ratios):.3f} | {tgt} | "
              f"{met} | {meaning} |")

    scale = os.path.join(out, "scale.md")
    if os.path.exists(scale):
        print()
        with open(scale) as f:
            print(f.read().rstrip())


if __name__ == "__main__":
    main()
