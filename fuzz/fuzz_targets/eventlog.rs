//! Parse, replay, decode and bind-check every event and summarise an arbitrary byte string as a
//! TCG event log.
//! Nothing may panic; decoded summaries must render.

#![no_main]

use std::fmt::Write as _;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(log) = vouch_tcglog::EventLog::parse(data) else { return };
    let replay = vouch_tcglog::Replay::from_log(&log);
    let mut sink = String::new();
    let mut count = 0usize;
    for ev in log.events() {
        let Ok(ev) = ev else { break };
        count += 1;
        let _ = ev.digests().iter().count();
        let _ = ev.coverage();
        let decoded = ev.decoded();
        let _ = write!(sink, "{decoded}");
        sink.clear();
    }
    if let Ok(r) = &replay {
        assert_eq!(r.event_count(), count);
        let _ = vouch_tcglog::compare_with_quote(&log, r, r.pcrs());
    }
    let state = vouch_tcglog::MachineState::from_log(&log);
    assert_eq!(state.is_ok(), replay.is_ok());
});
