//! Parse, replay (both conventions, every bank), decode every entry and appraise it against a
//! small policy, for an arbitrary byte string as an IMA list (binary, or ASCII converted).
//! Nothing may panic; the incremental state must equal the whole-list replay.

#![no_main]

use vouch_ima::policy::{PolicyDocument, RuntimePolicy};
use vouch_ima::{Convention, MeasurementList, RunningPcr10, TemplateData, replay};
use vouch_tpm2::HashAlg;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vouch_ima::ascii::to_binary(data);
    let Ok(list) = MeasurementList::parse(data) else { return };
    let banks = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];
    let full = replay(&list, &banks, Convention::PerBank);
    let _ = replay(&list, &banks, Convention::Sha1Padded);
    let policy = RuntimePolicy::compile(&PolicyDocument {
        version: 1,
        excludes: vec!["/tmp/*".into()],
        ..PolicyDocument::default()
    })
    .expect("static policy");
    let mut state = RunningPcr10::new(&banks, Convention::PerBank);
    for e in list.entries() {
        let Ok(e) = e else { break };
        state.consume(&e).expect("entries come in order");
        if let Ok(t) = TemplateData::decode(&e) {
            let _ = t.signature();
            let _ = t.digest.map(|d| d.to_prefixed_hex());
        }
        let _ = e.fields().count();
        let _ = policy.appraise(&e);
    }
    if let Ok(r) = full {
        assert_eq!(r.pcr10, state);
        assert_eq!(r.entry_count, state.entry_count());
    }
});
