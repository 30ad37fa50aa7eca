//! `cargo run --release -p vouch-fleetsim --example simulate -- HOSTS SEED`: the timeline that
//! `vouch fleet simulate` runs, without the rest of the binary (for timing).

#![allow(clippy::unwrap_used, reason = "example: bad arguments end it")]

fn main() {
    let mut args = std::env::args().skip(1);
    let hosts = args.next().map_or(1000, |a| a.parse().unwrap());
    let seed = args.next().map_or(1, |a| a.parse().unwrap());
    let report = vouch_fleetsim::run(&vouch_fleetsim::SimConfig::new(hosts, seed)).unwrap();
    for line in &report.timeline {
        eprintln!("{line}");
    }
    eprintln!(
        "{} quotes verified and appraised in {:.1}s",
        report.quotes, report.seconds
    );
    println!("{}", serde_json::to_string(&report.summary).unwrap());
}
