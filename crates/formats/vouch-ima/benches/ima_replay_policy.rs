//! Replay of PCR 10 plus runtime-policy appraisal.
//!
//! * synthetic: a deterministic 10,000-entry ima-ng list (SHA-1 template hashes, SHA-256 file
//!   digests) against a 50,000-path allowlist; every entry is replayed into the SHA-256 bank
//!   (per-bank convention: the template data hashed with SHA-256), its SHA-1 template hash
//!   recomputed and compared, and appraised. Target: >= 1,000,000 entries/s on one core.
//! * f40: replay of the real 362-entry Fedora 40 ima-sig list into all four banks.
//! * peer: when `IMA_PEER_INPUTS` names a directory made by `keylime_bench.py gen`, the same
//!   list (ASCII, converted here) and allowlist that Keylime's `process_measurement_list` gets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vouch_ima::policy::{PolicyDocument, RuntimePolicy, Verdict};
use vouch_ima::{Convention, MeasurementList, RunningPcr10, replay};
use vouch_tpm2::HashAlg;

/// xorshift64*: deterministic bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn digest(&mut self) -> [u8; 32] {
        let mut d = [0u8; 32];
        for c in d.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        d
    }
}

fn ima_ng(path: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&(8u32 + 32).to_le_bytes());
    data.extend_from_slice(b"sha256:\0");
    data.extend_from_slice(digest);
    data.extend_from_slice(&(path.len() as u32 + 1).to_le_bytes());
    data.extend_from_slice(path.as_bytes());
    data.push(0);
    let mut e = 10u32.to_le_bytes().to_vec();
    e.extend_from_slice(HashAlg::Sha1.hash(&data).as_bytes());
    e.extend_from_slice(&6u32.to_le_bytes());
    e.extend_from_slice(b"ima-ng");
    e.extend_from_slice(&(data.len() as u32).to_le_bytes());
    e.extend_from_slice(&data);
    e
}

/// (list bytes, policy document): `n` entries, all allowed, plus `extra` unrelated paths.
fn synthetic(n: usize, extra: usize) -> (Vec<u8>, PolicyDocument) {
    let dirs = [
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/systemd",
        "/usr/libexec",
        "/usr/lib/python3/dist-packages/pkg",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut list = Vec::new();
    let mut files = Vec::new();
    for i in 0..n {
        let path = format!(
            "{}/file-{i:06}{}",
            dirs[i % dirs.len()],
            if i % 3 == 0 { ".so.1" } else { "" }
        );
        let d = rng.digest();
        list.extend_from_slice(&ima_ng(&path, &d));
        files.push((path, d));
    }
    for j in 0..extra {
        files.push((format!("/opt/vendor/unused/lib-{j:06}.so"), rng.digest()));
    }
    let mut doc = PolicyDocument::from_sha256_files(files);
    doc.excludes = vec![
        "/tmp/*".into(),
        "/var/lib/docker/overlay2/*".into(),
        "/home/*/.cache/*".into(),
    ];
    (list, doc)
}

/// Replay into `banks`, check each template hash, appraise each entry: what a verifier does
/// per attestation. Returns (state, mismatches + rejections).
fn replay_and_appraise(
    list: &MeasurementList<'_>,
    policy: &RuntimePolicy,
    banks: &[HashAlg],
) -> (RunningPcr10, usize) {
    let mut pcr = RunningPcr10::new(banks, Convention::PerBank);
    let mut bad = 0usize;
    for e in list.entries() {
        let e = e.unwrap();
        if !e.is_violation() && !e.template_hash_matches() {
            bad += 1;
        }
        pcr.consume(&e).unwrap();
        if let Verdict::Rejected(_) = policy.appraise(&e) {
            bad += 1;
        }
    }
    (pcr, bad)
}

fn bench(c: &mut Criterion) {
    let (bytes, doc) = synthetic(10_000, 40_000);
    let policy = RuntimePolicy::compile(&doc).unwrap();
    assert_eq!(policy.path_count(), 50_000);
    let list = MeasurementList::parse(&bytes).unwrap();
    let (_, bad) = replay_and_appraise(&list, &policy, &[HashAlg::Sha256]);
    assert_eq!(bad, 0);

    let mut g = c.benchmark_group("synthetic ima-ng, 10,000 entries, 50,000-path allowlist");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("replay sha256 + template check + policy", |b| {
        b.iter(|| replay_and_appraise(black_box(&list), &policy, &[HashAlg::Sha256]))
    });
    g.bench_function("policy only", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in black_box(&list).entries() {
                n += usize::from(matches!(policy.appraise(&e.unwrap()), Verdict::Accepted(_)));
            }
            n
        })
    });
    g.bench_function("replay sha256 + template check", |b| {
        b.iter(|| replay(black_box(&list), &[HashAlg::Sha256], Convention::PerBank).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("incremental, +100 entries on a 10,000-entry state");
    g.throughput(Throughput::Elements(100));
    let start = list.entries().nth(9_900).unwrap().unwrap();
    let mut at = RunningPcr10::new(&[HashAlg::Sha256], Convention::PerBank);
    for e in list.entries().take(9_900) {
        at.consume(&e.unwrap()).unwrap();
    }
    let tail = MeasurementList::with_template_hash_alg(&bytes[start.offset()..], HashAlg::Sha1);
    let full = replay(&list, &[HashAlg::Sha256], Convention::PerBank).unwrap();
    let mut quoted = vouch_tpm2::PcrValues::new();
    quoted.insert(10, full.pcr10.value(HashAlg::Sha256).unwrap());
    g.bench_function("advance_to_quote + policy", |b| {
        b.iter(|| {
            let mut s = at;
            let m = s
                .advance_to_quote(tail.entries_from(9_900), &quoted)
                .unwrap();
            let mut rejected = 0usize;
            for e in tail.entries_from(9_900) {
                rejected +=
                    usize::from(matches!(policy.appraise(&e.unwrap()), Verdict::Rejected(_)));
            }
            (m, rejected)
        })
    });
    g.finish();

    let f40 = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../testdata/ima/f40-vtpm-imasig-sha1.bin"
    ))
    .unwrap();
    let mut g = c.benchmark_group("f40-vtpm-imasig-sha1 (362 ima-sig entries)");
    g.throughput(Throughput::Elements(362));
    g.bench_function("parse + replay sha1", |b| {
        b.iter(|| {
            let l = MeasurementList::parse(black_box(&f40)).unwrap();
            replay(&l, &[HashAlg::Sha1], Convention::PerBank).unwrap()
        })
    });
    g.bench_function("parse + replay 4 banks", |b| {
        b.iter(|| {
            let l = MeasurementList::parse(black_box(&f40)).unwrap();
            replay(
                &l,
                &[
                    HashAlg::Sha1,
                    HashAlg::Sha256,
                    HashAlg::Sha384,
                    HashAlg::Sha512,
                ],
                Convention::PerBank,
            )
            .unwrap()
        })
    });
    g.finish();

    if let Ok(dir) = std::env::var("IMA_PEER_INPUTS") {
        peer(c, std::path::Path::new(&dir));
    }
}

/// The inputs `keylime_bench.py gen` wrote: ASCII list + Keylime runtime policy.
fn peer(c: &mut Criterion, dir: &std::path::Path) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let text = std::fs::read(dir.join("ima_ascii_runtime_measurements")).unwrap();
    let kl: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("runtime_policy.json")).unwrap()).unwrap();
    // Keylime's `digests` map is our allowlist; its three exclude regexes become globs.
    let mut doc: PolicyDocument = serde_json::from_value(serde_json::json!({
        "digests": kl["digests"],
        "excludes": ["/tmp/*", "/var/lib/docker/overlay2/*", "/home/*/.cache/*"],
    }))
    .unwrap();
    doc.version = 1;
    let policy = RuntimePolicy::compile(&doc).unwrap();
    let (bin, alg) = vouch_ima::ascii::to_binary(&text).unwrap();
    let list = MeasurementList::with_template_hash_alg(&bin, alg);
    let n = list.entries().count() as u64;
    let (pcr, bad) = replay_and_appraise(&list, &policy, &[HashAlg::Sha256]);
    assert_eq!(bad, 0);
    assert_eq!(
        pcr.value(HashAlg::Sha256).unwrap().to_hex(),
        manifest["ima"]["pcr10_final"].as_str().unwrap(),
        "same PCR 10 as Keylime"
    );
    let mut g = c.benchmark_group(format!(
        "keylime peer inputs ({n} entries, {} paths)",
        policy.path_count()
    ));
    g.throughput(Throughput::Elements(n));
    g.bench_function(
        "ascii -> binary + replay sha256 + template check + policy",
        |b| {
            b.iter(|| {
                let (bin, alg) = vouch_ima::ascii::to_binary(black_box(&text)).unwrap();
                let list = MeasurementList::with_template_hash_alg(&bin, alg);
                replay_and_appraise(&list, &policy, &[HashAlg::Sha256])
            })
        },
    );
    g.bench_function("binary: replay sha256 + template check + policy", |b| {
        b.iter(|| replay_and_appraise(black_box(&list), &policy, &[HashAlg::Sha256]))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
