#!/usr/bin/env bash
# README's first command: install what is needed, build Vouch (release), and run the demo:
# a verifier on SQLite and a simulated fleet booted from real firmware logs; two hosts are
# tampered with (a modified firmware volume, an unknown bootloader) and caught with reasons.
# Extra arguments go to `vouch demo` (e.g. --hosts 50, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
echo "== building vouch (release; the first build takes several minutes)"
cargo build --release --locked -p vouch
echo "== vouch demo"
exec target/release/vouch demo "$@"
