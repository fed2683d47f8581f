#!/usr/bin/env python3
"""Markdown tables from bench/figures.sh's results.jsonl: per tag, the median over runs of
every figure (and the range of p50), plus the same-run floor ratios.

    python3 bench/figures-table.py out/figures/results.jsonl
"""
import json
import statistics
import sys
from collections import OrderedDict


def us(ns):
    return f"{ns / 1000:.1f}"


def main():
    rows = OrderedDict()
    for line in open(sys.argv[1]):
        line = line.strip()
        if line:
            d = json.loads(line)
            rows.setdefault(d["tag"], []).append(d)
    print("| run | n | requested /s | achieved /s | replies /s | p50 us (range) | p90 | p99 | p99.9 | p99.99 | max | unanswered |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    med = lambda ds, k: statistics.median(d[k] for d in ds)
    for tag, ds in rows.items():
        p50s = sorted(d["p50_ns"] for d in ds)
        rng = f" ({us(p50s[0])}-{us(p50s[-1])})" if len(ds) > 1 else ""
        print(
            f"| {tag} | {len(ds)} | {ds[0]['requested_rate'] or '-'} | {med(ds, 'achieved_rate'):,.0f} "
            f"| {med(ds, 'reply_rate'):,.0f} | {us(med(ds, 'p50_ns'))}{rng} | {us(med(ds, 'p90_ns'))} "
            f"| {us(med(ds, 'p99_ns'))} | {us(med(ds, 'p999_ns'))} | {us(med(ds, 'p9999_ns'))} "
            f"| {us(med(ds, 'max_ns'))} | {sum(d['unanswered'] for d in ds)} |"
        )
    ratios = [(t, ds) for t, ds in rows.items() if any(d.get("p50_floor_ratio") for d in ds)]
    if ratios:
        print()
        print("| run | venue p50 us | floor p50 us (same run) | ratio per run | median ratio | sizes (req/reply B) |")
        print("| --- | ---: | ---: | --- | ---: | --- |")
        for tag, ds in ratios:
            rs = [d["p50_floor_ratio"] for d in ds]
            print(
                f"| {tag} | {' / '.join(us(d['p50_ns']) for d in ds)} "
                f"| {' / '.join(us(d['floor']['p50_ns']) for d in ds)} "
                f"| {' / '.join(f'{r:.2f}' for r in rs)} | **{statistics.median(rs):.2f}x** "
                f"| {ds[0]['request_bytes']}/{ds[0]['reply_bytes']} |"
            )


if __name__ == "__main__":
    main()
