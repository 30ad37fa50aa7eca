//! Builders of binary IMA measurement-list entries for the IMA end-to-end tests: what a
//! kernel's `binary_runtime_measurements` holds (PCR 10, SHA-1 template hash over the template
//! data), for the simulated kernel to "measure".

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the builders"
)]

use vouch_ima::policy::PolicyDocument;
use vouch_sim::SimTpm;
use vouch_tpm2::HashAlg;

/// One binary IMA entry of template `name` with `fields`.
pub fn entry(name: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut data = Vec::new();
    for f in fields {
        data.extend_from_slice(&(f.len() as u32).to_le_bytes());
        data.extend_from_slice(f);
    }
    let mut e = 10u32.to_le_bytes().to_vec();
    e.extend_from_slice(HashAlg::Sha1.hash(&data).as_bytes());
    e.extend_from_slice(&(name.len() as u32).to_le_bytes());
    e.extend_from_slice(name.as_bytes());
    e.extend_from_slice(&(data.len() as u32).to_le_bytes());
    e.extend_from_slice(&data);
    e
}

/// A `d-ng` field holding a SHA-256 digest.
pub fn d_ng(digest: &[u8]) -> Vec<u8> {
    let mut d = b"sha256:\0".to_vec();
    d.extend_from_slice(digest);
    d
}

/// An `n-ng` field.
pub fn n_ng(path: &str) -> Vec<u8> {
    let mut n = path.as_bytes().to_vec();
    n.push(0);
    n
}

/// An ima-ng entry for a file at `path` with content `content`.
pub fn ima_ng(path: &str, content: &[u8]) -> Vec<u8> {
    entry(
        "ima-ng",
        &[&d_ng(HashAlg::Sha256.hash(content).as_bytes()), &n_ng(path)],
    )
}

/// An ima-sig entry with a digsig v2 signature (`sig` over the SHA-256 file digest).
pub fn ima_sig(path: &str, content: &[u8], sig: &[u8], keyid: [u8; 4]) -> Vec<u8> {
    let mut s = vec![3u8, 2, 4]; // EVM_IMA_XATTR_DIGSIG, v2, sha256
    s.extend_from_slice(&keyid);
    s.extend_from_slice(&(sig.len() as u16).to_be_bytes());
    s.extend_from_slice(sig);
    entry(
        "ima-sig",
        &[
            &d_ng(HashAlg::Sha256.hash(content).as_bytes()),
            &n_ng(path),
            &s,
        ],
    )
}

/// The boot_aggregate entry a kernel writes for the TPM's current PCRs 0-9 (SHA-256 bank).
pub fn boot_aggregate(tpm: &SimTpm) -> Vec<u8> {
    let mut h = vouch_tpm2::Hasher::new(HashAlg::Sha256);
    for i in 0..10 {
        h.update(tpm.pcr(HashAlg::Sha256, i).unwrap().as_bytes());
    }
    entry(
        "ima-ng",
        &[&d_ng(h.finish().as_bytes()), &n_ng("boot_aggregate")],
    )
}

/// Content of test file `i`.
pub fn content(i: usize) -> Vec<u8> {
    format!("ELF binary number {i}\n").into_bytes()
}

/// Path of test file `i`.
pub fn path(i: usize) -> String {
    format!("/usr/lib/x86_64-linux-gnu/libvouch-{i:05}.so.1")
}

/// A runtime policy allowing test files `0..n`.
pub fn allow_files(n: usize) -> PolicyDocument {
    PolicyDocument::from_sha256_files((0..n).map(|i| {
        let mut d = [0u8; 32];
        d.copy_from_slice(HashAlg::Sha256.hash(&content(i)).as_bytes());
        (path(i), d)
    }))
}

/// Entries for test files in `range`.
pub fn files(range: std::ops::Range<usize>) -> Vec<u8> {
    range.flat_map(|i| ima_ng(&path(i), &content(i))).collect()
}
