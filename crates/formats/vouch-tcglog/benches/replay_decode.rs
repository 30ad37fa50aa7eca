//! Replay plus typed decoding of every event of a real 101-event log (QEMU/OVMF, Ubuntu 20.04,
//! SHA-1 + SHA-256). Target: at least 20,000 per second on one core (50 µs each).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    reason = "benchmark setup"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vouch_tcglog::{EventData, EventLog, Replay};

fn log_bytes() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../testdata/eventlogs/qemu-ubuntu2004-1.bin"
    );
    std::fs::read(path).expect("testdata log")
}

fn replay_and_decode(bytes: &[u8]) -> usize {
    let log = EventLog::parse(bytes).unwrap();
    let replay = Replay::from_log(&log).unwrap();
    let mut decoded = 0usize;
    for ev in log.events() {
        let data = EventData::decode(&ev.unwrap());
        decoded += usize::from(!matches!(black_box(data), EventData::Undecodable { .. }));
    }
    black_box(replay);
    decoded
}

fn bench(c: &mut Criterion) {
    let bytes = log_bytes();
    assert_eq!(replay_and_decode(&bytes), 101);
    let mut g = c.benchmark_group("qemu-ubuntu2004-1 (101 events)");
    g.throughput(Throughput::Elements(1));
    g.bench_function("replay", |b| {
        b.iter(|| Replay::from_log(&EventLog::parse(black_box(&bytes)).unwrap()).unwrap())
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let log = EventLog::parse(black_box(&bytes)).unwrap();
            for e in log.events() {
                black_box(EventData::decode(&e.unwrap()));
            }
        })
    });
    g.bench_function("replay+decode", |b| {
        b.iter(|| replay_and_decode(black_box(&bytes)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
