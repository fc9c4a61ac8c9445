#!/bin/sh
# Regenerate the figures of docs/descent.md (release build; about a minute on 2 cores).
set -eu
cd "$(dirname "$0")/../.."
cargo build --release --quiet
mf=./target/release/marginflow
out=target/descent-figures
mkdir -p docs/figures

# Stable rank vs iteration for init scales 1e-8..1 times 1/sqrt(d) (Frei et al. 2023, Fig. 1 style).
$mf sweep descent --kind mixture --n 50 --d 10000 --width 100 --leak 0.1 \
    --init-scale 1e-8,1e-6,1e-4,1e-2,1 --init-relative --step-size 0.05 --steps 10000 \
    --out $out/init-scale
cp $out/init-scale/stable_rank_vs_step.svg docs/figures/descent_stable_rank_vs_step.svg
cp $out/init-scale/stable_rank_vs_init_scale.svg docs/figures/descent_stable_rank_vs_init_scale.svg

# Final stable rank vs d, small (1e-6/sqrt(d)) against default (1/sqrt(d)) initialization.
$mf sweep descent --kind mixture --n 50 --d 500,1000,2000,4000,8000,16000 --width 100 --leak 0.1 \
    --init-scale 1e-6,1 --init-relative --step-size 0.05 --steps 1000 \
    --out $out/dimension
cp $out/dimension/stable_rank_vs_d.svg docs/figures/descent_stable_rank_vs_d.svg
