#!/usr/bin/env bash
# Runs the `retry` criterion benchmark, then prints a markdown table of the median time of each
# case in the `retry_happy_path` group and its ratio to `bare`, read from criterion's
# target/criterion/retry_happy_path/*/new/estimates.json.
#
#   benches/table.sh                 # bench (1 s warm-up, 3 s measurement), then the table
#   benches/table.sh --no-run        # only print the table of the last run
#   benches/table.sh -- ARGS...      # pass other criterion arguments instead of the defaults
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--no-run" ]]; then
    :
else
    if [[ "${1:-}" == "--" ]]; then
        shift
        args=("$@")
    else
        args=(--warm-up-time 1 --measurement-time 3)
    fi
    cargo bench --bench retry -- "${args[@]}" >&2
fi

target="${CARGO_TARGET_DIR:-target}"
python3 - "$target/criterion/retry_happy_path" <<'PY'
import json, pathlib, sys

group = pathlib.Path(sys.argv[1])
order = ["bare", "resilience_retry", "resilience_retry_keys", "backon", "tokio_retry"]
medians = {}
for estimates in sorted(group.glob("*/new/estimates.json")):
    data = json.loads(estimates.read_text())
    medians[estimates.parent.parent.name] = data["median"]["point_estimate"]
if "bare" not in medians:
    sys.exit(f"no `bare` results under {group}: run the benchmark first")
names = [n for n in order if n in medians] + sorted(set(medians) - set(order))
bare = medians["bare"]
print("| case | median (ns) | ratio to bare |")
print("|---|---:|---:|")
for name in names:
    print(f"| {name} | {medians[name]:.2f} | {medians[name] / bare:.2f}x |")
PY
