#!/usr/bin/env bash
# The benchmark command (BENCHMARKS.md): every criterion benchmark RUNS times (default 3),
# then the concurrent-login scale run once, then a Markdown summary of medians, spread and
# ratios in $CARGO_TARGET_DIR/bench-summary/summary.md (target/ by default).
#
#   bash benches/run.sh                                  # about 12 minutes on 2 cores
#   RUNS=1 TOTP_MFA_SCALE_SECS=1 bash benches/run.sh     # a quick look, about 4 minutes
#
# Numbers are only comparable within one run on a quiet machine: the summary records the
# load average and any fuzzer or test run it saw.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${RUNS:-3}"
target="${CARGO_TARGET_DIR:-target}"
out="$target/bench-summary"
rm -rf "$out"
mkdir -p "$out"

busy() {
  # Other CPU-heavy work that would distort the figures.
  { pgrep -af 'cargo-fuzz|cargo test|cargo build|rustc ' || true; } | cut -c1-160
}

# The scale run measures SQLite and PostgreSQL too (PostgreSQL on a throwaway server, when
# initdb and pg_ctl are installed; otherwise its rows are skipped with a note).
scale_features="sqlite,postgres"

echo "== building"
cargo bench --bench otp --bench flows --no-run
cargo bench --features "$scale_features" --bench scale --no-run

for i in $(seq 1 "$runs"); do
  echo "== criterion run $i of $runs"
  {
    echo "start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    busy | sed 's/^/busy: /'
  } >> "$out/conditions.txt"
  CRITERION_HOME="$out/criterion-$i" cargo bench --bench otp --bench flows 2>&1 \
    | tee "$out/criterion-$i.log"
  echo "end   $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/conditions.txt"
done

echo "== scale run"
{
  echo "scale start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
  busy | sed 's/^/busy: /'
} >> "$out/conditions.txt"
cargo bench --features "$scale_features" --bench scale | tee "$out/scale.md"

python3 benches/summarize.py "$out" "$runs" > "$out/summary.md"
echo
cat "$out/summary.md"
echo
echo "summary written to $out/summary.md"
