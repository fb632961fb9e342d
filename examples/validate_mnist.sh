#!/usr/bin/env bash
# examples/validate_mnist.sh — the MNIST validation of docs/results.md: the paper's
# configuration (models/mnist.lua) for several methods and seeds, then one Markdown table of
# test error per epoch (mean and spread over seeds) and wall time per run.
#   examples/validate_mnist.sh "bp:3 dfc-ssa:10:2e-5 dfc@cvode-bdf:1:2e-5" "42 43 44"
# (method[@solver]:epochs[:lr] list, then the seeds; without lr each method runs with its own
# published configuration, models/mnist.lua; FEEDBACK=trained selects the trained-feedback ones)
# Needs the data: scripts/get-data.sh. Runs go to runs/validate/.
set -euo pipefail
cd "$(dirname "$0")/.."
specs=${1:-"bp:3 dfc-ssa:10"}
seeds=${2:-"42 43 44"}
out=runs/validate
mkdir -p "$out"
for spec in $specs; do
  IFS=: read -r method epochs lr <<< "$spec"
  lr=${lr:-paper}
  fb=${FEEDBACK:-weight_product}
  lrset=(); [ "$lr" != paper ] && lrset=(--set lr="$lr")
  solver=${method#*@}; [ "$solver" = "$method" ] && solver=euler; method=${method%%@*}
  for seed in $seeds; do
    name="$method-$solver-lr$lr-seed$seed"
    [ "$fb" != weight_product ] && name="$method-$fb-$solver-lr$lr-seed$seed"
    if ls -d "$out/$name-"* > /dev/null 2>&1; then echo "skip $name (done)"; continue; fi
    echo "== $name ($epochs epochs)"
    build/bin/apical run models/mnist.lua --set method="$method" --set solver="$solver" \
      --set epochs="$epochs" --set seed="$seed" "${lrset[@]}" --set feedback="$fb" \
      --set out_dir="$out" --set progress=false \
      | sed 's/^/   /'
    for d in "$out"/student-teacher-* "$out"/mnist-"$method"-*; do
      [ -d "$d" ] && [ ! -e "$out/$name-run" ] && mv "$d" "$out/$name-run" && break
    done
  done
done
echo
echo "| method | seed | epoch | test error % | valid error % | wall s |"
echo "|---|---|---|---|---|---|"
for d in "$out"/*-run; do
  n=$(basename "$d" -run)
  awk -F, -v n="$n" 'NR > 2 { printf "| %s | | %d | %.2f | %.2f | %.0f |\n", n, $1, 100 * $6, 100 * $4, $7 }' "$d/log.csv"
done
