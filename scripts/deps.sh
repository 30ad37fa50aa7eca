#!/usr/bin/env bash
# Install what Vouch's build, demo and tests need on a fresh Debian 12 machine (idempotent).
# Debian packages: the TPM stack (libtss2 for the agent, swtpm and tpm2-tools for tests);
# postgresql for the store and verifier tests (they run their own server on loopback);
# qemu-system-x86, ovmf and busybox-static for the real-firmware tests (tests/ovmf_e2e.rs).
# Cargo tools: cargo-fuzz for the fuzz runs.
set -euo pipefail

APT_PACKAGES=(pkg-config libssl-dev libtss2-dev swtpm swtpm-tools tpm2-tools openssl postgresql
  qemu-system-x86 ovmf busybox-static)

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

# The real-firmware tests boot Debian's kernel (the one linux-image-amd64 points at) under OVMF.
# It is unpacked into a cache, never installed as the host's kernel: vmlinuz plus the virtio
# modules the guest loads (network to the verifier, a disk for the agent's state).
KDIR="${VOUCH_GUEST_KERNEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vouch/guest-kernel}"
if [ ! -f "$KDIR/vmlinuz" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
  if [ -z "$pkg" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
  fi
  echo "deps: unpacking $pkg into $KDIR"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null) && dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  mkdir -p "$KDIR.new/modules"
  cp "$tmp"/x/boot/vmlinuz-* "$KDIR.new/vmlinuz"
  cp "$tmp"/x/boot/config-* "$KDIR.new/config"
  (cd "$tmp"/x/lib/modules/* && find . \( -name 'virtio*.ko' -o -name '*failover.ko' \) -exec cp --parents {} "$KDIR.new/modules/" \;)
  dpkg-deb -f "$tmp"/*.deb Package Version > "$KDIR.new/PACKAGE"
  rm -rf "$tmp" "$KDIR"; mv "$KDIR.new" "$KDIR"
fi

if [ "${VOUCH_NEED_FUZZ:-0}" = 1 ] && ! command -v cargo-fuzz >/dev/null; then
  echo "deps: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
