#!/usr/bin/env bash
# README's test command: everything CI runs. Installs what it needs, then:
# format, lints, every test (unit, real-data integration, swtpm end to end), bench compile,
# and every fuzz target for FUZZ_SECONDS (default 60) each.
set -euo pipefail
cd "$(dirname "$0")/.."

VOUCH_NEED_FUZZ=1 scripts/deps.sh

echo "== fmt"; cargo fmt --all -- --check
echo "== clippy"; cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== fuzz (${FUZZ_SECONDS:=60}s per target)"
( cd fuzz
  # Fuzzing on stable Rust: no sanitizer instrumentation (-s none); libFuzzer still finds panics,
  # aborts, timeouts and out-of-memory (-rss_limit_mb).
  cargo fuzz build -s none
  # Two targets at a time (one per core); each still runs for FUZZ_SECONDS.
  run_target() {
    local target=$1 corpus="target/corpus/$1" log="target/fuzz-$1.log"
    mkdir -p "$corpus"
    [ -d "seeds/$target" ] && cp -n seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    if cargo fuzz run -s none "$target" "$corpus" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        >"$log" 2>&1; then
      echo "-- fuzz $target: $(grep -E '^Done' "$log" | tail -n 1)"
    else
      tail -n 60 "$log"
      echo "fuzz target $target FAILED (crash input under fuzz/artifacts/$target)"
      return 1
    fi
  }
  failed=0
  targets=($(cargo fuzz list))
  for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pids=()
    for t in "${targets[@]:i:2}"; do run_target "$t" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
  done
  [ "$failed" = 0 ] || exit 1
)
echo "== all checks passed"
