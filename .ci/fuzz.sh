#!/usr/bin/env bash
# Runs every native Go fuzz target (func FuzzXxx(f *testing.F)) for a short,
# fixed time; a crash (or any failure) fails the run. The targets are found,
# not listed: the packages whose test files define one, then `go test -list`
# in each, so a new target is never forgotten.
#
#   bash .ci/fuzz.sh                      # the CI budget: 2 000 inputs per target
#                                         # (a few seconds each with build and start-up)
#   FUZZTIME=60s bash .ci/fuzz.sh ./internal/api/enos   # longer, one package
#
# The CI budget is a count of inputs, not a duration: with a duration Go's
# fuzz coordinator can fail a target with a bare "context deadline exceeded"
# and no crasher when its workers are starved at the deadline (golang/go#75804,
# fixed in Go 1.27; seen here on FuzzHuaweiAPI on a loaded machine while
# the baseline coverage was still being gathered).
#
# A crash is written by Go to the package's testdata/fuzz/FuzzXxx/; keep it
# there (committed) as a regression seed once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-2000x}"
# Two workers: the machine is shared (other tests and engineers).
parallel="${FUZZ_PARALLEL:-2}"

if [ "$#" -gt 0 ]; then
  pkgs=("$@")
else
  mapfile -t pkgs < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . \
    | xargs -n1 dirname | sort -u | sed 's|^\./||; s|^|./|')
fi

failed=()
total=0
start=$(date +%s)
for pkg in "${pkgs[@]}"; do
  mapfile -t targets < <(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
  for t in "${targets[@]}"; do
    total=$((total + 1))
    t0=$(date +%s)
    if out=$(go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" -parallel "$parallel" "$pkg" 2>&1); then
      printf '[fuzz] ok   %-28s %-36s %ss\n' "$t" "$pkg" "$(( $(date +%s) - t0 ))"
    else
      printf '[fuzz] FAIL %-28s %s\n%s\n' "$t" "$pkg" "$out"
      failed+=("$pkg $t")
    fi
  done
done
printf '[fuzz] %d targets, %s each, %ss in all\n' "$total" "$fuzztime" "$(( $(date +%s) - start ))"
if [ "${#failed[@]}" -gt 0 ]; then
  printf '[fuzz] failed: %s\n' "${failed[@]}"
  exit 1
fi
