//! A real-firmware guest: Debian's kernel booted by Debian's OVMF under QEMU (TCG, q35) with a
//! swtpm as its TPM (CRB interface), running `vouch agent --tpm device` from a small initramfs.
//!
//! - The initramfs (cpio newc, gzip) holds static busybox, a stripped copy of the `vouch`
//!   binary with the shared libraries `ldd` names (plus libtss2-tcti-device, which libtss2's
//!   TCTI loader opens at run time), the virtio modules the guest needs, the verifier's CA and
//!   `/init`. It is built once per test and is byte-identical for every boot: QEMU patches its
//!   size into the kernel header before OVMF measures the kernel (PCR 4) and the kernel's EFI
//!   stub measures the initrd itself (PCR 9), so a different initrd is a different boot.
//! - The guest reaches the verifier through QEMU user-mode networking with `restrict=on` (no
//!   route anywhere) and one `guestfwd`: a connection to 10.0.2.100:8443 in the guest runs
//!   `busybox nc 127.0.0.1 PORT` on the host, i.e. reaches `vouch serve` on the host's loopback
//!   and nothing else.
//! - The agent's state (`/var/lib/vouch-agent`: identity and AK) survives reboots on a small
//!   raw virtio disk, written as a tar archive. After the agent has attested, `/init` adds the
//!   firmware's event log and `/proc/cmdline` to that archive and powers off; the host reads
//!   them from the disk image.
//! - The swtpm keeps its state directory across boots (same EK, same AK parent), like a real
//!   machine's TPM; a fresh swtpm process serves each boot.
//!
//! Tools come from `scripts/deps.sh` (qemu-system-x86, ovmf, busybox-static, swtpm, and the
//! Debian kernel it unpacks into `~/.cache/vouch/guest-kernel`). A missing piece fails the test
//! with a message naming `scripts/deps.sh`; a guest that does not finish fails it with the
//! guest's console output.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the guest finds the verifier (forwarded to the host's loopback by `guestfwd`).
pub const GUEST_VERIFIER: &str = "10.0.2.100";
const GUEST_VERIFIER_PORT: u16 = 8443;
/// Kernel modules the guest loads (with their dependencies): network and the state disk.
const MODULES: [&str; 3] = ["virtio_pci", "virtio_net", "virtio_blk"];
const OVMF_DIR: &str = "/usr/share/OVMF";
const DEPS: &str = "run scripts/deps.sh (README's test command does)";

/// Which OVMF variable store a boot starts from (a fresh copy of Debian's template each time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vars {
    /// `OVMF_VARS_4M.fd`: no Secure Boot keys, Secure Boot off.
    Blank,
    /// `OVMF_VARS_4M.ms.fd`: Debian's PK, Microsoft's KEK and db enrolled, Secure Boot on.
    SecureBootMs,
}

/// Host tools and files the guest needs, located once.
pub struct Assets {
    pub qemu: PathBuf,
    pub busybox: PathBuf,
    pub swtpm: PathBuf,
    pub kernel_dir: PathBuf,
}

fn require_tool(tool: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} is not installed: {DEPS} (real-firmware tests need qemu-system-x86, ovmf, busybox-static, swtpm)"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn require_file(path: &Path, what: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{what} {} is missing: {DEPS}",
        path.display()
    );
    path.to_owned()
}

/// The cache `scripts/deps.sh` unpacks Debian's kernel into.
pub fn kernel_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VOUCH_GUEST_KERNEL_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
        PathBuf::from,
    );
    cache.join("vouch/guest-kernel")
}

/// True if the ELF file has no program interpreter (statically linked).
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([bytes[o], bytes[o + 1]]));
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let phoff = usize::try_from(u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap())).unwrap();
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    bytes.starts_with(b"\x7fELF") && (0..count).all(|i| u32_at(phoff + i * size) != 3)
}

impl Assets {
    pub fn locate() -> Self {
        let busybox = require_tool("busybox");
        assert!(
            is_static_elf(&std::fs::read(&busybox).unwrap()),
            "{} is not statically linked: install busybox-static ({DEPS})",
            busybox.display()
        );
        let kernel_dir = kernel_dir();
        require_file(&kernel_dir.join("vmlinuz"), "the guest kernel");
        for f in ["OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_VARS_4M.ms.fd"] {
            require_file(&Path::new(OVMF_DIR).join(f), "OVMF firmware");
        }
        Self {
            qemu: require_tool("qemu-system-x86_64"),
            busybox,
            swtpm: require_tool("swtpm"),
            kernel_dir,
        }
    }

    pub fn kernel(&self) -> PathBuf {
        self.kernel_dir.join("vmlinuz")
    }

    /// `Package: ...\nVersion: ...` of the cached kernel.
    pub fn kernel_package(&self) -> String {
        std::fs::read_to_string(self.kernel_dir.join("PACKAGE")).unwrap_or_default()
    }

    fn vars_template(vars: Vars) -> PathBuf {
        Path::new(OVMF_DIR).join(match vars {
            Vars::Blank => "OVMF_VARS_4M.fd",
            Vars::SecureBootMs => "OVMF_VARS_4M.ms.fd",
        })
    }

    /// The `.ko` files for `MODULES` and everything they depend on, in load order.
    fn modules(&self) -> Vec<(String, PathBuf)> {
        let root = self.kernel_dir.join("modules");
        let mut found = std::collections::BTreeMap::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in
                std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}: {DEPS}", d.display()))
            {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Some(stem) =
                    p.file_name().unwrap().to_str().unwrap().strip_suffix(".ko")
                {
                    found.insert(stem.replace('-', "_"), p);
                }
            }
        }
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        fn visit(
            name: &str,
            found: &std::collections::BTreeMap<String, PathBuf>,
            seen: &mut BTreeSet<String>,
            order: &mut Vec<(String, PathBuf)>,
        ) {
            if !seen.insert(name.to_owned()) {
                return;
            }
            let path = found
                .get(name)
                .unwrap_or_else(|| panic!("kernel module {name} is not in the cache: {DEPS}"));
            for dep in module_depends(&std::fs::read(path).unwrap()) {
                visit(&dep, found, seen, order);
            }
            order.push((name.to_owned(), path.clone()));
        }
        for m in MODULES {
            visit(m, &found, &mut seen, &mut order);
        }
        order
    }
}

/// The `depends=` entry of a kernel module's `.modinfo`.
fn module_depends(ko: &[u8]) -> Vec<String> {
    let key = b"\0depends=";
    ko.windows(key.len())
        .position(|w| w == key)
        .map(|i| {
            let rest = &ko[i + key.len()..];
            let end = rest.iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&rest[..end])
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

/// A cpio "newc" archive, written deterministically (inode numbers in order, mtime 0, root).
struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl Cpio {
    fn new() -> Self {
        Self {
            out: Vec::new(),
            ino: 0,
            dirs: BTreeSet::new(),
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let mut h = String::from("070701");
        for v in [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            u32::try_from(data.len()).unwrap(),
            0,
            0,
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).unwrap(),
            0,
        ] {
            write!(h, "{v:08x}").unwrap();
        }
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// `path` and its parent directories (relative, no leading `/`).
    fn dir(&mut self, path: &str) {
        let mut so_far = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(part);
            if self.dirs.insert(so_far.clone()) {
                let name = so_far.clone();
                self.entry(&name, 0o040755, (0, 0), &[]);
            }
        }
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o100000 | mode, (0, 0), data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// Shared libraries `ldd` reports for `bin` (absolute paths as the loader will look them up).
fn ldd(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().unwrap();
    assert!(
        out.status.success(),
        "ldd {}: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            // "libx.so.1 => /lib/.../libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let l = l.trim();
            let path = l.split_once("=> ").map_or(l, |(_, p)| p);
            let path = path.split(" (").next().unwrap();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn guest_init(name: &str, modules: &[String]) -> String {
    format!(
        r#"#!/bin/busybox sh
# Vouch real-firmware test guest (crates/apps/vouch/tests/support/guest.rs).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security
for m in {modules}; do insmod /lib/modules/$m.ko || echo "VOUCH-GUEST: insmod $m failed"; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
mkdir -p /var/lib/vouch-agent /out
tar -xf /dev/vda -C / 2>/dev/null
echo "VOUCH-GUEST: up $(cut -d' ' -f1 /proc/uptime)s; cmdline: $(cat /proc/cmdline)"
echo "VOUCH-GUEST: agent state: $(cd /var/lib/vouch-agent && echo *)"
# Nothing but the forwarded verifier is reachable: not even the host's loopback via slirp's
# 10.0.2.2 alias, on the very port the verifier listens on.
( nc -w 5 10.0.2.2 "$(cat /etc/vouch/host-port)" </dev/null >/dev/null 2>&1 \
  && echo "VOUCH-GUEST: probe: host loopback reachable" \
  || echo "VOUCH-GUEST: probe: host loopback unreachable" ) &
RUST_LOG=info vouch agent --tpm device --verifier https://{GUEST_VERIFIER}:{GUEST_VERIFIER_PORT} \
  --verifier-ca /etc/vouch/verifier-ca.pem --name {name} --count 1
echo "VOUCH-GUEST: agent exit $? at $(cut -d' ' -f1 /proc/uptime)s"
wait
cp /sys/kernel/security/tpm0/binary_bios_measurements /out/eventlog.bin
cat /proc/cmdline > /out/cmdline
cp /sys/kernel/security/ima/binary_runtime_measurements /out/ima.bin 2>/dev/null || true
tar -cf /dev/vda -C / var/lib/vouch-agent out && sync && echo "VOUCH-GUEST: saved"
echo "VOUCH-GUEST: done"
poweroff -f
"#,
        modules = modules.join(" "),
    )
}

/// Drop ANSI escape sequences (OVMF clears the screen on the serial console).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One guest: its TPM state, its state disk and its initramfs, booted as often as needed.
pub struct Guest {
    pub dir: PathBuf,
    pub name: String,
    pub tpm_state: PathBuf,
    pub disk: PathBuf,
    pub initrd: PathBuf,
    assets: Assets,
}

/// What one boot left behind.
pub struct Boot {
    pub tag: String,
    pub console: String,
    /// The firmware's event log as the guest's kernel exposed it (and the agent sent it).
    pub event_log: Vec<u8>,
    /// `/proc/cmdline` in the guest.
    pub cmdline: String,
    /// The kernel's IMA measurement list at power-off, if IMA was active.
    pub ima_log: Option<Vec<u8>>,
    /// QEMU start to guest power-off.
    pub elapsed: Duration,
}

impl Guest {
    /// Provision a TPM (EK certificates from the local CA in `ek_ca`, created on first use) and
    /// an empty state disk. [`Guest::build_initramfs`] must run before the first boot.
    pub fn new(dir: &Path, name: &str, ek_ca: &Path) -> Self {
        let assets = Assets::locate();
        std::fs::create_dir_all(dir).unwrap();
        let tpm_state = dir.join("tpm-state");
        std::fs::create_dir_all(&tpm_state).unwrap();
        std::fs::create_dir_all(ek_ca).unwrap();
        super::swtpm::provision(ek_ca, &tpm_state);
        let disk = dir.join("state-disk.img");
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
            tpm_state,
            disk,
            initrd: dir.join("initrd.gz"),
            assets,
        }
    }

    /// Build the initramfs (once: every boot must use the same one) with `verifier_ca` as the
    /// agent's `--verifier-ca`; `verifier_port` (on the host's loopback) is what the guest
    /// must not be able to reach directly.
    pub fn build_initramfs(&self, verifier_ca: &Path, verifier_port: u16) {
        let mut cpio = Cpio::new();
        for d in ["dev", "proc", "sys", "tmp", "etc/vouch", "var/lib", "out"] {
            cpio.dir(d);
        }
        cpio.entry("dev/console", 0o020600, (5, 1), &[]);
        cpio.file(
            "bin/busybox",
            0o755,
            &std::fs::read(&self.assets.busybox).unwrap(),
        );
        let stripped = self.dir.join("vouch.stripped");
        let strip = Command::new("strip")
            .args(["--strip-all", "-o"])
            .arg(&stripped)
            .arg(env!("CARGO_BIN_EXE_vouch"))
            .output()
            .unwrap();
        assert!(
            strip.status.success(),
            "strip: {}",
            String::from_utf8_lossy(&strip.stderr)
        );
        cpio.file("bin/vouch", 0o755, &std::fs::read(&stripped).unwrap());
        // libtss2-tctildr opens the device TCTI at run time, so ldd does not list it.
        let mut libs: BTreeSet<PathBuf> = ldd(&stripped).into_iter().collect();
        let tctildr = libs
            .iter()
            .find(|l| l.to_string_lossy().contains("libtss2-tctildr"))
            .cloned()
            .expect("vouch links libtss2-tctildr");
        let device_tcti = tctildr.with_file_name("libtss2-tcti-device.so.0");
        libs.extend(ldd(&device_tcti));
        libs.insert(device_tcti);
        for lib in &libs {
            cpio.file(
                lib.to_str().unwrap(),
                0o755,
                &std::fs::read(lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display())),
            );
        }
        let modules = self.assets.modules();
        for (name, path) in &modules {
            cpio.file(
                &format!("lib/modules/{name}.ko"),
                0o644,
                &std::fs::read(path).unwrap(),
            );
        }
        cpio.file(
            "etc/vouch/verifier-ca.pem",
            0o644,
            &std::fs::read(verifier_ca).unwrap(),
        );
        cpio.file(
            "etc/vouch/host-port",
            0o644,
            verifier_port.to_string().as_bytes(),
        );
        let names: Vec<String> = modules.into_iter().map(|(n, _)| n).collect();
        cpio.file("init", 0o755, guest_init(&self.name, &names).as_bytes());
        let raw = cpio.finish();
        let mut gzip = Command::new("gzip")
            .args(["-1", "-n", "-c"])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&self.initrd).unwrap())
            .spawn()
            .unwrap();
        gzip.stdin.take().unwrap().write_all(&raw).unwrap();
        assert!(gzip.wait().unwrap().success(), "gzip failed");
    }

    /// Boot once with kernel command line `cmdline` and the variable store `vars`; the agent
    /// attests once to the verifier on the host's loopback port `verifier_port`, then the guest
    /// powers off. Panics, with the guest's console, if the guest does not get there within
    /// `timeout` or the agent fails.
    pub fn boot(
        &self,
        tag: &str,
        cmdline: &str,
        vars: Vars,
        verifier_port: u16,
        timeout: Duration,
    ) -> Boot {
        let run = self.dir.join(format!("boot-{tag}"));
        std::fs::create_dir_all(&run).unwrap();
        let vars_copy = run.join("OVMF_VARS.fd");
        std::fs::copy(Assets::vars_template(vars), &vars_copy).unwrap();
        let sock = run.join("swtpm.sock");
        let console = run.join("console.log");
        let swtpm = Killed(
            Command::new(&self.assets.swtpm)
                .args(["socket", "--tpm2", "--tpmstate"])
                .arg(format!("dir={}", self.tpm_state.display()))
                .arg("--ctrl")
                .arg(format!("type=unixio,path={}", sock.display()))
                .args(["--flags", "startup-clear", "--log"])
                .arg(format!("file={}", run.join("swtpm.log").display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "swtpm did not create {}",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let start = Instant::now();
        let mut qemu = Killed(
            Command::new(&self.assets.qemu)
                .args(["-accel", "tcg", "-machine", "q35", "-m", "1024", "-smp", "1"])
                .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
                .arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_DIR}/OVMF_CODE_4M.fd"
                ))
                .arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,unit=1,file={}",
                    vars_copy.display()
                ))
                .arg("-chardev")
                .arg(format!("socket,id=chrtpm,path={}", sock.display()))
                .args(["-tpmdev", "emulator,id=tpm0,chardev=chrtpm"])
                .args(["-device", "tpm-crb,tpmdev=tpm0"])
                .arg("-kernel")
                .arg(self.assets.kernel())
                .arg("-initrd")
                .arg(&self.initrd)
                .args(["-append", cmdline])
                .arg("-netdev")
                .arg(format!(
                    "user,id=n0,restrict=on,guestfwd=tcp:{GUEST_VERIFIER}:{GUEST_VERIFIER_PORT}-cmd:{} nc 127.0.0.1 {verifier_port}",
                    self.assets.busybox.display()
                ))
                .args(["-device", "virtio-net-pci,netdev=n0,romfile="])
                .arg("-drive")
                .arg(format!(
                    "if=none,id=d0,format=raw,file={}",
                    self.disk.display()
                ))
                .args(["-device", "virtio-blk-pci,drive=d0"])
                .arg("-serial")
                .arg(format!("file:{}", console.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(run.join("qemu.stderr")).unwrap())
                .spawn()
                .unwrap(),
        );
        let read_console = || {
            strip_ansi(&String::from_utf8_lossy(
                &std::fs::read(&console).unwrap_or_default(),
            ))
        };
        let exit = loop {
            if let Some(status) = qemu.0.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > timeout {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let elapsed = start.elapsed();
        drop(qemu);
        drop(swtpm);
        let text = read_console();
        let qemu_err = std::fs::read_to_string(run.join("qemu.stderr")).unwrap_or_default();
        let Some(status) = exit else {
            panic!(
                "guest boot {tag} did not power off within {timeout:?} (QEMU killed)\nQEMU stderr:\n{qemu_err}\nguest console:\n{text}"
            );
        };
        assert!(
            status.success() && text.contains("VOUCH-GUEST: done"),
            "guest boot {tag} failed (QEMU {status})\nQEMU stderr:\n{qemu_err}\nguest console:\n{text}"
        );
        assert!(
            text.contains("VOUCH-GUEST: agent exit 0 ") && text.contains("VOUCH-GUEST: saved"),
            "the agent in guest boot {tag} failed\nguest console:\n{text}"
        );
        assert!(
            text.contains("VOUCH-GUEST: probe: host loopback unreachable"),
            "guest boot {tag} reached the host other than through the forwarded verifier\nguest console:\n{text}"
        );
        let out = run.join("disk");
        std::fs::create_dir_all(&out).unwrap();
        let tar = Command::new("tar")
            .arg("-xf")
            .arg(&self.disk)
            .arg("-C")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            tar.status.success(),
            "reading the state disk after boot {tag}: {}",
            String::from_utf8_lossy(&tar.stderr)
        );
        Boot {
            tag: tag.to_owned(),
            console: text,
            event_log: std::fs::read(out.join("out/eventlog.bin")).unwrap(),
            cmdline: std::fs::read_to_string(out.join("out/cmdline"))
                .unwrap()
                .trim_end()
                .to_owned(),
            ima_log: std::fs::read(out.join("out/ima.bin")).ok(),
            elapsed,
        }
    }
}
