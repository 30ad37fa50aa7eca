//! Print every event's decoded summary: `cargo run -p vouch-tcglog --example dump FILE`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "developer tool")]

fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE");
    let bytes = std::fs::read(path).unwrap();
    let log = vouch_tcglog::EventLog::parse(&bytes).unwrap();
    for ev in log.events() {
        let ev = ev.unwrap();
        println!(
            "{:3} {:2} {} {}",
            ev.index(),
            ev.pcr(),
            ev.event_type(),
            ev.decoded()
        );
    }
}
