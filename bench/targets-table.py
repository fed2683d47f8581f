#!/usr/bin/env python3
"""Markdown tables from bench/targets.sh's results.jsonl: medians over the runs of each tag,
the same-run floor ratios (threading) and the ratios between variants (journal, throughput).

    python3 bench/targets-table.py out/targets/results.jsonl
"""
import json
import statistics
import sys
from collections import OrderedDict


def us(ns):
    return f"{ns / 1000:.1f}"


def load(path):
    rows = OrderedDict()
    for line in open(path):
        line = line.strip()
        if line:
            d = json.loads(line)
            rows.setdefault(d["tag"], []).append(d)
    return rows


def med(ds, key, floor=False):
    vals = [(d["floor"] if floor else d)[key] for d in ds if not floor or d.get("floor")]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def threading(rows):
    print("### Round trips against the spinning-server floor (median of runs, us)\n")
    print("| run | n | p50 | p99 | p99.9 | floor p50 | floor p99 | p50 / floor | p99 / floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in ("auto", "dedicated"):
        for what in ("binary-closed", "fix-closed", "binary-open-20000"):
            ds = rows.get(f"{mode}-{what}")
            if not ds:
                continue
            p50, p99, p999 = med(ds, "p50_ns"), med(ds, "p99_ns"), med(ds, "p999_ns")
            f50, f99 = med(ds, "p50_ns", True), med(ds, "p99_ns", True)
            # Ratio of medians and, in brackets, the per-run ratios.
            per = " / ".join(f"{d['p99_ns'] / d['floor']['p99_ns']:.2f}" for d in ds if d.get("floor"))
            print(f"| {mode} {what} | {len(ds)} | {us(p50)} | {us(p99)} | {us(p999)} | {us(f50)} | {us(f99)} "
                  f"| {ratio(p50, f50)} | {ratio(p99, f99)} ({per}) |")
    print()


def throughput(rows):
    print("### Pipelined throughput (replies/s)\n")
    print("| protocol | journal written | journal off | written / off |")
    print("| --- | ---: | ---: | ---: |")
    for proto in ("binary", "fix"):
        w, o = rows.get(f"pipelined-{proto}-written"), rows.get(f"pipelined-{proto}-off")
        if w and o:
            wr, orr = med(w, "reply_rate"), med(o, "reply_rate")
            print(f"| {proto} | {wr:,.0f} | {orr:,.0f} | {wr / orr:.2f} |")
    print()


def journal(rows):
    print("### Closed loop by acknowledgement policy (median of runs, us)\n")
    print("| protocol | policy | n | p50 | p99 | p99.9 | p50 / off | p99 / off |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for proto in ("binary", "fix"):
        off = rows.get(f"ack-off-{proto}")
        for ack in ("off", "written", "fsync"):
            ds = rows.get(f"ack-{ack}-{proto}")
            if not ds:
                continue
            p50, p99, p999 = med(ds, "p50_ns"), med(ds, "p99_ns"), med(ds, "p999_ns")
            r50 = ratio(p50, med(off, "p50_ns")) if off else "-"
            r99 = ratio(p99, med(off, "p99_ns")) if off else "-"
            print(f"| {proto} | {ack} | {len(ds)} | {us(p50)} | {us(p99)} | {us(p999)} | {r50} | {r99} |")
    print()
    print("### Journal placement, shared threading (binary)\n")
    print("| placement | closed p50 us | closed p99 us | pipelined replies/s |")
    print("| --- | ---: | ---: | ---: |")
    for p in ("thread", "duty-cycle"):
        c, t = rows.get(f"placement-{p}-binary"), rows.get(f"placement-{p}-pipelined")
        if c:
            rate = f"{med(t, 'reply_rate'):,.0f}" if t else "-"
            print(f"| {p} | {us(med(c, 'p50_ns'))} | {us(med(c, 'p99_ns'))} | {rate} |")
    print()


def main():
    rows = load(sys.argv[1])
    threading(rows)
    throughput(rows)
    journal(rows)
    fill = rows.get("recovery-fill")
    if fill:
        print(f"Recovery fill: {fill[0]['orders']:,} orders at {fill[0]['reply_rate']:,.0f} replies/s "
              "(journal written)\n")


if __name__ == "__main__":
    main()
