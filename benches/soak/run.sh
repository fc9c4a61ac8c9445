#!/bin/sh
# The large soak of odd data (issue 23 item 7): RUNS seeded problems (default 300) through
# tests/soak.rs, each with its 1.5 s budget; prints one line per run and the counts per status.
#   RUNS=300 SEED=23 sh benches/soak/run.sh
set -e
cd "$(dirname "$0")/../.."
SOAK_RUNS="${RUNS:-300}" SOAK_SEED="${SEED:-23}" SOAK_VERBOSE=1 \
    nice -n 10 cargo test --release --test soak -- --nocapture 2>&1 | grep -E '^ *[a-z_]+( \(over budget\))? +[0-9.]+ s|^soak:|panicked|FAILED|test result'
