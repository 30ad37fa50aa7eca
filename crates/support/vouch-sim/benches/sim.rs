//! What a simulated TPM costs: creating one (with pooled keys, and with fresh keygen), a quote,
//! and booting from a real event log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench setup: a failure is a broken bench"
)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use vouch_sim::{KeyPool, SimCa, SimTpm};
use vouch_tpm2::PcrSelection;

fn bench(c: &mut Criterion) {
    let keys = KeyPool::generate(2).unwrap();
    let ca = Arc::new(SimCa::generate().unwrap());
    let log = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../testdata/eventlogs/qemu-ubuntu2004-1.bin"),
    )
    .unwrap();

    c.bench_function("sim_create_pooled_keys_shared_ca", |b| {
        b.iter(|| {
            SimTpm::builder()
                .ca(ca.clone())
                .ek_key(keys.key(0).unwrap().clone())
                .ak_key(keys.key(1).unwrap().clone())
                .build()
                .unwrap()
        });
    });

    let mut tpm = SimTpm::builder()
        .ca(ca.clone())
        .ek_key(keys.key(0).unwrap().clone())
        .ak_key(keys.key(1).unwrap().clone())
        .build()
        .unwrap();
    tpm.boot_with_event_log(&log).unwrap();
    let sel = PcrSelection::parse_spec("sha256:0,1,2,3,4,5,6,7,8,9+sha1:0,7").unwrap();
    c.bench_function("sim_quote_12_pcrs", |b| {
        b.iter(|| {
            tpm.quote(b"0123456789abcdef0123456789abcdef", &sel)
                .unwrap()
        });
    });
    c.bench_function("sim_boot_qemu_log", |b| {
        b.iter(|| tpm.boot_with_event_log(&log).unwrap());
    });

    let mut slow = c.benchmark_group("keygen");
    slow.sample_size(10);
    slow.bench_function("sim_create_fresh_keys_and_ca", |b| {
        b.iter(|| {
            let mut t = SimTpm::new().unwrap();
            t.ak_public().unwrap();
            t
        });
    });
    slow.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
