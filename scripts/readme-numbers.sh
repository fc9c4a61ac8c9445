#!/bin/sh
# Regenerate the numbers the README quotes (release build): the step counts of the deep-horizon
# runs (README "Deep horizons") and the slope of the position gap 1 − cos(W, W*) against 1/s
# (README "A worked example"). Prints one line per number; about 30 s on 2 cores.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
mf=./target/release/marginflow
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

$mf gen --kind gaussian --n 6 --d 300 --seed 1 --out "$tmp/stiff6.json" 2>/dev/null
for method in seulex dopri5; do
    $mf flow --data "$tmp/stiff6.json" --width 4 --leak 0.5 --until-log10-time 1e6 --method $method --json --quiet \
        > "$tmp/$method.json"
    python3 -c "
import json, sys
s = json.load(open(sys.argv[1])); st = s['statistics']
print(f\"{sys.argv[2]} to t = 10^(10^6): {st['accepted']} accepted + {st['rejected']} rejected steps, {st['rhs_evaluations']} right-hand sides, status {s['status']}\")
" "$tmp/$method.json" $method
done

# The position gap on the built-in Gaussian scenario: the report's fit log10(1 − cos) = a + b log10(1/s).
$mf validate validation/gaussian.toml --out "$tmp/validate" --quiet >/dev/null 2>&1 || true
python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
for sc in r['scenarios']:
    for c in sc['claims']:
        for m in c['measurements']:
            if m['name'].startswith('position-gap fit'):
                print(f\"{sc['name']}: {m['name']} = {m['value']:.4f}\")
" "$tmp/validate/report.json"
