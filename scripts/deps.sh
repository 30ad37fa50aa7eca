#!/usr/bin/env bash
# Install what Vouch's build, demo and tests need on a fresh Debian 12 machine (idempotent).
# Debian packages: the TPM stack (libtss2 for the agent, swtpm and tpm2-tools for tests);
# postgresql for the store and verifier tests (they run their own server on loopback).
# Cargo tools: cargo-fuzz for the fuzz runs.
set -euo pipefail

APT_PACKAGES=(pkg-config libtss2-dev swtpm swtpm-tools tpm2-tools openssl postgresql)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${VOUCH_NEED_FUZZ:-0}" = 1 ] && ! command -v cargo-fuzz >/dev/null; then
  echo "deps: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
