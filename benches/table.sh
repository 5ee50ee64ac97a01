#!/usr/bin/env bash
# Runs a criterion benchmark, then prints markdown tables of its medians, read from criterion's
# target/criterion/<group>/<case>/new/estimates.json.
#
#   benches/table.sh                        # `retry`: per group `retry_happy_path*`, each case and its ratio to `bare`
#   benches/table.sh rate_limit             # `rate_limit`: ours / governor per group, and the clock reads
#   benches/table.sh [BENCH] --no-run       # only print the tables of the last run
#   benches/table.sh [BENCH] -- ARGS...     # pass other criterion arguments instead of the defaults
#
# The defaults are `--warm-up-time 1 --measurement-time 3`.
set -euo pipefail
cd "$(dirname "$0")/.."

bench=retry
if [[ "${1:-}" == "retry" || "${1:-}" == "rate_limit" ]]; then
    bench=$1
    shift
fi

if [[ "${1:-}" == "--no-run" ]]; then
    :
else
    if [[ "${1:-}" == "--" ]]; then
        shift
        args=("$@")
    else
        args=(--warm-up-time 1 --measurement-time 3)
    fi
    cargo bench -p resilience-benches --bench "$bench" -- "${args[@]}" >&2
fi

target="${CARGO_TARGET_DIR:-target}"
python3 - "$bench" "$target/criterion" <<'PY'
import json, pathlib, sys

bench, root = sys.argv[1], pathlib.Path(sys.argv[2])


def medians(group):
    found = {}
    for estimates in sorted((root / group).glob("*/new/estimates.json")):
        data = json.loads(estimates.read_text())
        found[estimates.parent.parent.name] = data["median"]["point_estimate"]
    return found


if bench == "retry":
    # one table per fixture: `retry_happy_path`, `retry_happy_path_call`
    order = ["bare", "resilience_retry", "resilience_retry_keys", "backon", "tokio_retry"]
    groups = sorted(p.name for p in root.glob("retry_happy_path*") if p.is_dir())
    tables = 0
    for group in groups:
        found = medians(group)
        if "bare" not in found:
            continue
        names = [n for n in order if n in found] + sorted(set(found) - set(order))
        bare = found["bare"]
        if tables:
            print()
        print(f"`{group}`")
        print()
        print("| case | median (ns) | ratio to bare |")
        print("|---|---:|---:|")
        for name in names:
            print(f"| {name} | {found[name]:.2f} | {found[name] / bare:.2f}x |")
        tables += 1
    if not tables:
        sys.exit(f"no `bare` results under {root}/retry_happy_path*: run the benchmark first")
else:
    groups = [
        ("rate_limit_check", "admitted check, uncontended"),
        ("rate_limit_2_threads", "2 threads, one limiter"),
        ("rate_limit_keyed_1000", "keyed, 1000 keys"),
    ]
    rows = []
    for group, label in groups:
        found = medians(group)
        if "resilience" in found and "governor" in found:
            rows.append((label, found["resilience"], found["governor"]))
    if not rows:
        sys.exit(f"no rate_limit results under {root}: run the benchmark first")
    print("| case | resilience (ns/check) | governor (ns/check) | ratio ours / governor |")
    print("|---|---:|---:|---:|")
    for label, ours, theirs in rows:
        if label.startswith("2 threads"):
            label += f" ({1e3 / ours:.1f} M vs {1e3 / theirs:.1f} M checks/s)"
        print(f"| {label} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f}x |")
    clocks = medians("rate_limit_clock")
    if clocks:
        print()
        print("| clock read | median (ns) |")
        print("|---|---:|")
        for name in ["std_instant_now", "tokio_instant_now", "quanta_now"]:
            if name in clocks:
                print(f"| {name} | {clocks[name]:.2f} |")
PY
