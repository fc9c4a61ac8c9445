#!/usr/bin/env bash
# The engine table (issue 22): each problem with --engine dual and --engine span, medians of
# RUNS runs (default 3) of wall time, CPU time and peak RSS, with the machine's load. A run
# longer than LIMIT seconds (default 180) is stopped and reported as "timeout".
#   sh benches/scale/run.sh            # all rows
#   ROWS="P1 P3" sh benches/scale/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
LIMIT=${LIMIT:-180}
ROWS=${ROWS:-"P1 P1b P2 P3 P4 P5 H1"}
[ -n "${MF_BIN:-}" ] || cargo build --release -q
bin=${MF_BIN:-target/release/marginflow}
dir=${SCALE_DIR:-target/scale}
mkdir -p "$dir"
gen() { [ -f "$dir/$1" ] || "$bin" gen "${@:2}" --out "$dir/$1" >/dev/null; }
gen p1.json --kind gaussian --n 100 --d 1000 --seed 3
gen p1b.json --kind gaussian --n 100 --d 1000 --seed 11
gen p2.csv --kind gaussian --n 200 --d 100000 --seed 1
gen p3.json --kind gaussian --n 40 --d 8 --seed 4
gen p4.json --kind gaussian --n 500 --d 10000 --seed 2
gen h1.json --kind gaussian --n 20 --d 4000 --seed 1

args_of() {
    case $1 in
        P1) echo "--data $dir/p1.json --width 64 --leak 0.1" ;;
        P1b) echo "--data $dir/p1b.json --width 64 --leak 0.1 --seed 2" ;;
        P2) echo "--data $dir/p2.csv --width 256 --leak 0.1" ;;
        P3) echo "--data $dir/p3.json --width 16 --leak 0.2" ;;
        P4) echo "--data $dir/p4.json --width 256 --leak 0.1" ;;
        P5) echo "--data $dir/p1.json --width 4096 --leak 0.1" ;;
        H1) echo "--data $dir/h1.json --width 16 --leak 0.2 --until-time 2 --rtol 1e-8" ;;
    esac
}

# One run: "wall cpu rss_mb status".
one() {
    local out
    out=$( { /usr/bin/time -f "%e %U %S %M" timeout "$LIMIT" "$bin" flow $1 --engine "$2" --json --quiet \
        > "$dir/summary.json"; } 2>&1 | tail -1) || true
    local wall user sys rss
    read -r wall user sys rss <<<"$out"
    local status
    status=$(python3 -c "import json,sys; d=json.load(open('$dir/summary.json')); print(d['status'])" 2>/dev/null || echo timeout)
    echo "$wall $(python3 -c "print(round($user + $sys, 2))") $((rss / 1024)) $status"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
printf "| %-4s | %-6s | %9s | %9s | %8s | %-10s |\n" problem engine "wall (s)" "CPU (s)" "RSS (MB)" status
printf "|------|--------|-----------|-----------|----------|------------|\n"
for row in $ROWS; do
    for engine in dual span; do
        : > "$dir/runs.txt"
        for _ in $(seq "$RUNS"); do one "$(args_of "$row")" "$engine" >> "$dir/runs.txt"; done
        wall=$(cut -d' ' -f1 "$dir/runs.txt" | median)
        cpu=$(cut -d' ' -f2 "$dir/runs.txt" | median)
        rss=$(cut -d' ' -f3 "$dir/runs.txt" | median)
        status=$(cut -d' ' -f4 "$dir/runs.txt" | sort | uniq -c | awk '{printf "%s%s×%s", (NR>1?",":""), $1, $2}')
        printf "| %-4s | %-6s | %9s | %9s | %8s | %-10s |\n" "$row" "$engine" "$wall" "$cpu" "$rss" "$status"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
