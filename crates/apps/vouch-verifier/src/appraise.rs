//! Evidence: decoding (pure, before anything is consumed) and appraisal (pure: host record +
//! verified quote + optional event log -> new host record + history entry).
//!
//! Checks, in order, each producing a reason that names what failed:
//! 1. the quote verifies with the host's AK over the raw bytes, carries the nonce, and its
//!    PCR digest matches the supplied values ([`vouch_tpm2::verify_quote`]);
//! 2. it covers every PCR of the configured selection;
//! 3. resetCount, restartCount and clock do not go backwards (a rolled-back or replayed
//!    state). restartCount and clock are compared only within one TPM reset cycle: a TPM
//!    Reset zeroes restartCount, and TPM2_Startup may restore an older NV clock;
//! 4. a reboot (resetCount up), a PCR change, or no stored log requires a fresh event log;
//!    a log must replay to the quoted boot PCRs (0-9, 14, and any quoted PCR it extends);
//! 5. quoted PCRs and the log's machine state must equal the host's baseline; a differing
//!    PCR names the first differing event when the baseline's log and the new log allow it
//!    (skipped for a host a fleet policy selects: the engine appraises its claims instead);
//! 6. for hosts with IMA, the reasons of [`crate::ima::appraise`] (PCR 10 is then explained by
//!    the measurement list, and left out of steps 4 and 5).
//!
//! The first good attestation after approval (every check passed, a log accepted) becomes
//! the baseline. Anything short of all checks passing is `untrusted`.

use chrono::{DateTime, Utc};
use vouch_api::EvidenceRequest;
use vouch_store::{Attestation, Baseline, BaselineSource, Counters, Host, HostStatus, Pcrs};
use vouch_tcglog::{EventLog, MachineState, TcgLogError};
use vouch_tpm2::{Digest, HashAlg, PcrSelection, PcrValues, QuoteError, VerifiedQuote};

use crate::error::ApiError;

/// Largest event log accepted.
pub const MAX_EVENT_LOG: usize = 1024 * 1024;
/// Largest `TPMS_ATTEST` / `TPMT_SIGNATURE` accepted.
pub const MAX_TPM_STRUCT: usize = 4096;
/// Nonce length.
pub const NONCE_LEN: usize = 32;
/// PCRs a UEFI event log speaks for (TCG PC Client PFP §3.3.4); the log must explain them.
pub const BOOT_LOG_PCRS: [u32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

/// Evidence whose every structure decoded; nothing is verified yet.
#[derive(Debug)]
pub struct DecodedEvidence {
    /// The nonce the agent answers.
    pub nonce: Vec<u8>,
    /// Raw `TPMS_ATTEST`.
    pub attest: Vec<u8>,
    /// Raw `TPMT_SIGNATURE`.
    pub signature: Vec<u8>,
    /// Supplied PCR values.
    pub pcrs: PcrValues,
    /// Event log (frames and replays).
    pub event_log: Option<Vec<u8>>,
    /// IMA measurement-list tail (frames).
    pub ima: Option<crate::ima::ImaTail>,
    /// The kernel command line the host reports (unverified until bound to PCR 9).
    pub kernel_cmdline: Option<String>,
}

/// Longest kernel command line accepted (Linux's COMMAND_LINE_SIZE is 2048 on x86; allow more).
const MAX_CMDLINE: usize = 8192;

fn log_error(e: &TcgLogError) -> String {
    match e {
        TcgLogError::Malformed(d) => format!("malformed event log: {d}"),
        TcgLogError::QuoteMismatch(m) => m.to_string(),
    }
}

/// Decode everything in an evidence request, refusing malformed or oversized parts. Runs
/// before the nonce is consumed, so a refused request changes nothing.
pub fn decode(req: EvidenceRequest) -> Result<DecodedEvidence, ApiError> {
    if req.nonce.0.len() != NONCE_LEN {
        return Err(ApiError::BadRequest(format!(
            "nonce is {} bytes, expected {NONCE_LEN}",
            req.nonce.0.len()
        )));
    }
    for (what, len) in [
        ("attest", req.attest.0.len()),
        ("signature", req.signature.0.len()),
    ] {
        if len > MAX_TPM_STRUCT {
            return Err(ApiError::TooLarge(format!(
                "{what} is {len} bytes; the limit is {MAX_TPM_STRUCT}"
            )));
        }
    }
    vouch_tpm2::Attest::decode(&req.attest.0)
        .map_err(|e| ApiError::BadRequest(format!("malformed TPMS_ATTEST: {e}")))?;
    vouch_tpm2::Signature::decode(&req.signature.0)
        .map_err(|e| ApiError::BadRequest(format!("malformed TPMT_SIGNATURE: {e}")))?;
    let mut pcrs = PcrValues::new();
    for (bank, values) in &req.pcrs {
        let alg = HashAlg::from_name(bank)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown PCR bank {bank:?}")))?;
        for (index, hex) in values {
            let i: u32 = index
                .parse()
                .ok()
                .filter(|i| *i < vouch_tpm2::pcr::MAX_PCRS)
                .ok_or_else(|| ApiError::BadRequest(format!("bad PCR index {index:?}")))?;
            let d = Digest::from_hex(alg, hex).map_err(|_| {
                ApiError::BadRequest(format!("PCR {bank}:{index} is not a {bank} digest in hex"))
            })?;
            pcrs.insert(i, d);
        }
    }
    if let Some(log) = &req.event_log {
        if log.0.len() > MAX_EVENT_LOG {
            return Err(ApiError::TooLarge(format!(
                "event log is {} bytes; the limit is {MAX_EVENT_LOG}",
                log.0.len()
            )));
        }
        let parsed = EventLog::parse(&log.0).map_err(|e| ApiError::BadRequest(log_error(&e)))?;
        vouch_tcglog::replay(&parsed).map_err(|e| ApiError::BadRequest(log_error(&e)))?;
    }
    if let Some(c) = &req.kernel_cmdline
        && c.len() > MAX_CMDLINE
    {
        return Err(ApiError::TooLarge(format!(
            "kernel command line is {} bytes; the limit is {MAX_CMDLINE}",
            c.len()
        )));
    }
    let kernel_cmdline = req.kernel_cmdline;
    let ima = req
        .ima
        .map(crate::ima::ImaTail::decode)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    Ok(DecodedEvidence {
        nonce: req.nonce.0,
        attest: req.attest.0,
        signature: req.signature.0,
        pcrs,
        event_log: req.event_log.map(|b| b.0),
        ima,
        kernel_cmdline,
    })
}

/// PCR values as the store and the API keep them.
#[must_use]
pub fn pcr_map(values: &PcrValues) -> Pcrs {
    let mut out = Pcrs::new();
    for (bank, index, d) in values.iter() {
        out.entry(bank.name().to_owned())
            .or_default()
            .insert(index.to_string(), d.to_hex());
    }
    out
}

/// What appraisal needs besides the host and the evidence.
#[derive(Debug)]
pub struct Policy<'a> {
    /// PCRs every quote must cover.
    pub required: &'a PcrSelection,
    /// The host's interval.
    pub interval: chrono::TimeDelta,
    /// `Some` for a host with IMA: the reasons of its IMA appraisal (empty when it passed).
    /// PCR 10 is then left out of the baseline and of the "PCRs changed" check.
    pub ima: Option<&'a [String]>,
    /// A fleet policy selects the host: its reference values, not a per-host baseline, decide
    /// (step 5 is skipped and no baseline is learned; see `engine`).
    pub fleet: bool,
    /// Known firmware builds: the machine state names the one the log's volumes match.
    pub firmware: Option<&'a vouch_tcglog::FirmwareCatalog>,
}

fn after(t: DateTime<Utc>, d: chrono::TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(t)
}

/// Delay before asking again when a log is needed (short, but never a hot loop).
const RETRY_SOON: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// The outcome of one attestation.
#[derive(Debug)]
pub struct Appraisal {
    /// The host record to store.
    pub host: Host,
    /// The history entry.
    pub record: Attestation,
    /// The quote verified, covered the required PCRs and its counters did not go backwards:
    /// state derived from it (IMA) may be stored.
    pub quote_accepted: bool,
}

/// Appraise verified (or refused) quote evidence against the host's stored state.
#[must_use]
pub fn appraise(
    host: &Host,
    quote: Result<VerifiedQuote, QuoteError>,
    event_log: Option<&[u8]>,
    kernel_cmdline: Option<&str>,
    policy: &Policy<'_>,
    now: DateTime<Utc>,
) -> Appraisal {
    let mut h = host.clone();
    let mut reasons: Vec<String> = Vec::new();
    let finish = |mut h: Host, reasons: Vec<String>, counters, pcrs, quote_accepted| {
        let status = if reasons.is_empty() {
            HostStatus::Trusted
        } else {
            HostStatus::Untrusted
        };
        h.status = status;
        h.reasons.clone_from(&reasons);
        if status == HostStatus::Trusted {
            h.last_good = Some(now);
        }
        h.next_due = if h.needs_event_log {
            after(now, RETRY_SOON.min(policy.interval))
        } else {
            after(now, policy.interval)
        };
        let record = Attestation {
            host_id: h.id,
            at: now,
            status,
            reasons,
            counters,
            pcrs,
        };
        Appraisal {
            host: h,
            record,
            quote_accepted,
        }
    };

    let q = match quote {
        Ok(q) => q,
        Err(e) => {
            reasons.push(format!("quote verification failed: {e}"));
            return finish(h, reasons, None, None, false);
        }
    };
    let quoted = pcr_map(&q.pcrs);
    let counters = Counters {
        reset_count: q.clock_info.reset_count,
        restart_count: q.clock_info.restart_count,
        clock: q.clock_info.clock,
    };

    let missing: Vec<String> = policy
        .required
        .iter()
        .filter(|(bank, index)| q.pcrs.get(*bank, *index).is_none())
        .map(|(bank, index)| format!("{bank}:{index}"))
        .collect();
    if !missing.is_empty() {
        reasons.push(format!(
            "the quote does not cover required PCR(s) {}",
            missing.join(", ")
        ));
        return finish(h, reasons, Some(counters), Some(quoted), false);
    }

    if let Some(old) = h.counters
        && let Some(r) = rollback(old, counters, q.clock_info.safe)
    {
        // Keep the high-water mark: stored counters never move backwards. The finding stays
        // until an operator clears it: a later good quote does not make it go away.
        h.hold_reason = Some(r.clone());
        reasons.push(r);
        return finish(h, reasons, Some(counters), Some(quoted), false);
    }
    if let Some(hold) = &h.hold_reason {
        reasons.push(format!("{hold} (stays until an operator clears it)"));
    }
    let rebooted = h
        .counters
        .filter(|old| counters.reset_count > old.reset_count)
        .map(|old| (old.reset_count, counters.reset_count));
    h.counters = Some(counters);
    h.last_seen = Some(now);
    h.stale_after = Some(after(
        now,
        policy.interval.checked_mul(2).unwrap_or(policy.interval),
    ));
    // With IMA, PCR 10 changes whenever a file is measured: the list explains it, not the
    // event log or the baseline.
    let boot_pcrs = |p: &Pcrs| -> Pcrs {
        if policy.ima.is_none() {
            return p.clone();
        }
        let mut p = p.clone();
        for bank in p.values_mut() {
            bank.remove(&vouch_ima::IMA_PCR.to_string());
        }
        p
    };
    let pcrs_changed = h
        .last_pcrs
        .as_ref()
        .is_some_and(|p| boot_pcrs(p) != boot_pcrs(&quoted));
    h.last_pcrs = Some(quoted.clone());
    if rebooted.is_some() || pcrs_changed {
        h.needs_event_log = true;
    }

    // The event log.
    let mut fresh_log = false;
    match event_log {
        Some(bytes) => match check_log(bytes, &q.pcrs, policy.firmware) {
            Ok(state) => {
                let state = state.map(|s| bind_cmdline(s, kernel_cmdline));
                h.event_log = Some(bytes.to_vec());
                h.event_log_sha256 = Some(vouch_store::sha256(bytes).to_vec());
                h.last_machine_state = state;
                h.needs_event_log = false;
                fresh_log = true;
            }
            Err(reason) => {
                h.needs_event_log = true;
                reasons.push(reason);
            }
        },
        None if h.needs_event_log || h.event_log.is_none() => {
            h.needs_event_log = true;
            reasons.push(match rebooted {
                Some((a, b)) => format!(
                    "TPM reset (reboot) detected: resetCount {a} -> {b}; a fresh event log is required"
                ),
                None if pcrs_changed => {
                    "quoted PCRs changed; a fresh event log is required".to_owned()
                }
                None => "no event log on record; the next evidence must carry one".to_owned(),
            });
        }
        None => {}
    }

    // The runtime measurements (before the baseline: a baseline is learned only from an
    // attestation that passed every check).
    if let Some(ima) = policy.ima {
        reasons.extend(ima.iter().cloned());
    }

    // The baseline (not for fleet-managed hosts: the engine appraises their claims).
    if policy.fleet {
        return finish(h, reasons, Some(counters), Some(quoted), true);
    }
    let mut compared = q.pcrs.clone();
    if policy.ima.is_some() {
        compared = PcrValues::new();
        for (_, index, value) in q.pcrs.iter().filter(|(_, i, _)| *i != vouch_ima::IMA_PCR) {
            compared.insert(index, *value);
        }
    }
    match &h.baseline {
        Some(b) => {
            reasons.extend(compare_pcrs(
                &b.pcrs,
                &compared,
                h.baseline_event_log.as_deref(),
                event_log.filter(|_| fresh_log),
            ));
            if fresh_log
                && let (Some(want), Some(got)) = (&b.machine_state, &h.last_machine_state)
                && let (want_c, got_c) = comparable(want, got)
                && want_c != got_c
            {
                reasons.push(format!(
                    "machine state differs from the baseline: {}",
                    differing_keys(&want_c, &got_c).join(", ")
                ));
                if let (Some(old), Some(new)) = (
                    want.get("kernel_cmdline")
                        .and_then(serde_json::Value::as_str),
                    got.get("kernel_cmdline")
                        .and_then(serde_json::Value::as_str),
                ) && old != new
                {
                    reasons.push(format!(
                        "kernel command line changed from {old:?} to {new:?} (PCR 9)"
                    ));
                }
            }
            if reasons.iter().any(|r| r.starts_with("PCR ")) && !fresh_log {
                // Ask for the log next time, to name the event.
                h.needs_event_log = true;
            }
        }
        None if reasons.is_empty() && h.approved_at.is_some() && h.event_log.is_some() => {
            h.baseline = Some(Baseline {
                pcrs: boot_pcrs(&quoted),
                machine_state: h.last_machine_state.clone(),
                source: BaselineSource::Learned,
                set_at: now,
                set_by: None,
            });
            h.baseline_event_log.clone_from(&h.event_log);
        }
        None => {
            if reasons.is_empty() {
                reasons.push("no baseline yet".to_owned());
            }
        }
    }
    finish(h, reasons, Some(counters), Some(quoted), true)
}

/// Whether the TPM's counters in a new quote show a rolled-back or replayed state, as the
/// TPM 2.0 Library (Part 1, "Clock and Timer") defines them:
/// * `resetCount` counts TPM Resets (boots) and never goes down (short of TPM2_Clear);
/// * `restartCount` counts TPM Restarts (resume) within one reset and never goes down
///   within it;
/// * `clock` never goes backwards within one reset/restart epoch. Across epochs it is
///   restored from NV: after an orderly shutdown it continues (never lower), after a
///   disorderly one it may be lower than a value already reported, and then the TPM says so
///   by clearing `safe`. A lower clock in a new epoch with `safe` set contradicts the TPM's
///   own statement: that is a rollback too.
fn rollback(old: Counters, new: Counters, safe: bool) -> Option<String> {
    let tail = "rolled-back or replayed TPM state";
    if new.reset_count < old.reset_count {
        return Some(format!(
            "TPM resetCount went backwards ({} -> {}): {tail}",
            old.reset_count, new.reset_count
        ));
    }
    let same_reset = new.reset_count == old.reset_count;
    if same_reset && new.restart_count < old.restart_count {
        return Some(format!(
            "TPM restartCount went backwards ({} -> {}): {tail}",
            old.restart_count, new.restart_count
        ));
    }
    if new.clock < old.clock {
        if same_reset && new.restart_count == old.restart_count {
            return Some(format!(
                "TPM clock went backwards ({} -> {} ms): {tail}",
                old.clock, new.clock
            ));
        }
        if safe {
            return Some(format!(
                "TPM clock went backwards across a TPM {} ({} -> {} ms) while the TPM reports \
                 its clock safe: {tail}",
                if same_reset { "restart" } else { "reset" },
                old.clock,
                new.clock
            ));
        }
    }
    None
}

/// The log must replay to the quoted boot PCRs; returns its machine state as JSON.
fn check_log(
    bytes: &[u8],
    quoted: &PcrValues,
    firmware: Option<&vouch_tcglog::FirmwareCatalog>,
) -> Result<Option<serde_json::Value>, String> {
    let log = EventLog::parse(bytes).map_err(|e| log_error(&e))?;
    let replay = vouch_tcglog::replay(&log).map_err(|e| log_error(&e))?;
    let mut covered = PcrValues::new();
    for (bank, index, value) in quoted.iter() {
        if BOOT_LOG_PCRS.contains(&index) || replay.pcrs().get(bank, index).is_some() {
            covered.insert(index, *value);
        }
    }
    vouch_tcglog::compare_with_quote(&log, &replay, &covered).map_err(|m| m.to_string())?;
    let state = MachineState::from_log(&log).ok().and_then(|mut s| {
        if let Some(c) = firmware {
            s.identify_firmware(&log, c);
        }
        serde_json::to_value(s).ok()
    });
    Ok(state)
}

/// Two machine states reduced to what may be compared: only data bound to its event's
/// digests. Left out: the firmware build's name (the verifier's own catalogue: a baseline
/// learned before a catalogue entry existed still compares equal), what is informational by
/// nature (boot applications' device paths and the role guessed from them, firmware blob
/// descriptions and addresses: their digests are the image's or the region's, and the PCRs
/// already compare those), and every field either state lists as unverified (its event's
/// data does not hash to its digest: never compared, shown as unverified).
fn comparable(
    want: &serde_json::Value,
    got: &serde_json::Value,
) -> (serde_json::Value, serde_json::Value) {
    let unverified = |s: &serde_json::Value| -> Vec<String> {
        s.get("unverified")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.get("field").and_then(serde_json::Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut skip = unverified(want);
    skip.extend(unverified(got));
    let reduce = |state: &serde_json::Value| {
        let mut s = state.clone();
        if let Some(m) = s.as_object_mut() {
            for key in ["firmware_identified", "firmware_blobs", "unverified"] {
                m.remove(key);
            }
            for key in &skip {
                m.remove(key);
            }
            if let Some(chain) = m
                .get_mut("boot_chain")
                .and_then(serde_json::Value::as_array_mut)
            {
                for stage in chain
                    .iter_mut()
                    .filter_map(serde_json::Value::as_object_mut)
                {
                    stage.remove("device_path");
                    stage.remove("kind");
                }
            }
        }
        s
    };
    (reduce(want), reduce(got))
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

/// One reason per quoted PCR that differs from (or is absent in) the baseline.
fn compare_pcrs(
    baseline: &Pcrs,
    quoted: &PcrValues,
    baseline_log: Option<&[u8]>,
    new_log: Option<&[u8]>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (bank, index, value) in quoted.iter() {
        let want = baseline
            .get(bank.name())
            .and_then(|b| b.get(&index.to_string()));
        let got = value.to_hex();
        match want {
            None => out.push(format!("PCR {bank}:{index} is not in the baseline")),
            Some(want) if *want != got => {
                let mut reason = format!(
                    "PCR {bank}:{index} differs from the baseline (baseline {}…, quoted {}…)",
                    short(want),
                    short(&got)
                );
                if let (Some(a), Some(b)) = (baseline_log, new_log)
                    && let Some(event) = first_difference(a, b, bank, index)
                {
                    reason.push_str("; ");
                    reason.push_str(&event);
                }
                out.push(reason);
            }
            Some(_) => {}
        }
    }
    out
}

/// One event as a reason shows it: index, type, decoded summary (bounded), digest.
struct Shown {
    index: usize,
    kind: String,
    summary: String,
    digest: Option<Digest>,
}

impl Shown {
    fn describe(&self) -> String {
        let digest = self.digest.map_or_else(
            || "no digest in this bank".to_owned(),
            |d| format!("{}…", short(&d.to_hex())),
        );
        if self.summary.is_empty() {
            format!("#{} {} {digest}", self.index, self.kind)
        } else {
            format!(
                "#{} {} \"{}\" {digest}",
                self.index, self.kind, self.summary
            )
        }
    }
}

/// Longest decoded summary a reason carries.
const SUMMARY_CHARS: usize = 160;

/// The first event extending `index` whose `bank` digest differs between two logs, shown with
/// its decoded content beside the baseline's (for example the old and new kernel command line).
fn first_difference(baseline: &[u8], new: &[u8], bank: HashAlg, index: u32) -> Option<String> {
    let (a, b) = (EventLog::parse(baseline).ok()?, EventLog::parse(new).ok()?);
    let pick = |log: &EventLog<'_>| -> Vec<Shown> {
        log.events()
            .map_while(Result::ok)
            .filter(|e| e.pcr() == index && e.is_extended())
            .map(|e| Shown {
                index: e.index(),
                kind: e.event_type().to_string(),
                summary: e
                    .decoded()
                    .to_string()
                    .chars()
                    .take(SUMMARY_CHARS)
                    .collect(),
                digest: e.digests().get(bank),
            })
            .collect()
    };
    let (ea, eb) = (pick(&a), pick(&b));
    let n = ea.len().max(eb.len());
    for i in 0..n {
        match (ea.get(i), eb.get(i)) {
            (Some(x), Some(y)) if x.digest == y.digest => {}
            (Some(x), Some(y)) => {
                return Some(format!(
                    "first differing event: {} (baseline: {})",
                    y.describe(),
                    x.describe()
                ));
            }
            (None, Some(y)) => {
                return Some(format!(
                    "first differing event: {} (not in the baseline log)",
                    y.describe()
                ));
            }
            (Some(x), None) => {
                return Some(format!(
                    "first differing event: baseline event {} is missing",
                    x.describe()
                ));
            }
            (None, None) => return None,
        }
    }
    None
}

/// Fill the machine state's `kernel_cmdline` with the host's reported command line when, and
/// only when, it hashes to the digest the Linux EFI stub measured into PCR 9 (SHA-256 of the
/// UTF-16LE text with its terminating NUL). Unbound text is dropped: it proves nothing.
fn bind_cmdline(mut state: serde_json::Value, reported: Option<&str>) -> serde_json::Value {
    let (Some(text), Some(obj)) = (reported, state.as_object_mut()) else {
        return state;
    };
    let measured = obj
        .get("kernel_cmdline_digest")
        .and_then(serde_json::Value::as_str);
    let already = obj.get("kernel_cmdline").is_some_and(|v| !v.is_null());
    if let Some(measured) = measured
        && !already
    {
        let mut utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        utf16.extend_from_slice(&[0, 0]);
        if HashAlg::Sha256.hash(&utf16).to_hex() == measured {
            obj.insert(
                "kernel_cmdline".to_owned(),
                serde_json::Value::String(text.to_owned()),
            );
        }
    }
    state
}

fn differing_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    match (a.as_object(), b.as_object()) {
        (Some(x), Some(y)) => {
            let mut keys: Vec<String> = x
                .keys()
                .chain(y.keys())
                .filter(|k| x.get(*k) != y.get(*k))
                .cloned()
                .collect();
            keys.sort();
            keys.dedup();
            keys
        }
        _ => vec!["(whole state)".to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(r: u32, s: u32, c: u64) -> Counters {
        Counters {
            reset_count: r,
            restart_count: s,
            clock: c,
        }
    }

    #[test]
    fn counters_going_backwards_are_rollback() {
        for safe in [true, false] {
            assert!(rollback(counters(2, 0, 10), counters(1, 0, 99), safe).is_some());
            assert!(rollback(counters(2, 3, 10), counters(2, 2, 99), safe).is_some());
            // Within one reset/restart epoch the clock never goes back, safe or not.
            assert!(rollback(counters(2, 3, 10), counters(2, 3, 9), safe).is_some());
        }
    }

    #[test]
    fn counters_moving_forward_are_fine() {
        for safe in [true, false] {
            assert!(rollback(counters(2, 3, 10), counters(2, 3, 10), safe).is_none());
            assert!(rollback(counters(2, 3, 10), counters(2, 4, 11), safe).is_none());
            assert!(rollback(counters(2, 3, 10), counters(3, 0, 11), safe).is_none());
        }
    }

    #[test]
    fn clock_restored_lower_after_a_restart_or_reset_is_fine_only_when_not_safe() {
        // TPM Restart (resume) or Reset after a disorderly shutdown: the clock comes back from
        // NV, lower than already reported, and the TPM clears `safe`.
        assert!(rollback(counters(2, 3, 10_000), counters(2, 4, 5_000), false).is_none());
        assert!(rollback(counters(2, 3, 10_000), counters(3, 0, 5_000), false).is_none());
        // The same with `safe` set contradicts the TPM: a replayed or other TPM's state.
        assert!(rollback(counters(2, 3, 10_000), counters(2, 4, 5_000), true).is_some());
        assert!(rollback(counters(2, 3, 10_000), counters(3, 0, 5_000), true).is_some());
    }

    #[test]
    fn binds_reported_cmdline_only_when_it_hashes_to_the_measured_digest() {
        let text = "console=ttyS0 root=/dev/vda ro initrd=initrd";
        let mut utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        utf16.extend_from_slice(&[0, 0]);
        let digest = HashAlg::Sha256.hash(&utf16).to_hex();
        let state = serde_json::json!({"kernel_cmdline": null, "kernel_cmdline_digest": digest});
        let bound = bind_cmdline(state.clone(), Some(text));
        assert_eq!(bound["kernel_cmdline"], text);
        let other = bind_cmdline(state.clone(), Some("console=ttyS0 init=/bin/sh"));
        assert!(
            other["kernel_cmdline"].is_null(),
            "unbound text must be dropped"
        );
        assert!(bind_cmdline(state, None)["kernel_cmdline"].is_null());
        let no_digest = serde_json::json!({"kernel_cmdline": null});
        assert!(bind_cmdline(no_digest, Some(text))["kernel_cmdline"].is_null());
    }

    #[test]
    fn unverified_and_informational_fields_are_never_compared() {
        let want = serde_json::json!({
            "secure_boot": "enabled", "dbx": {"hashes": {"sha256": 3}},
            "boot_chain": [{"event": 9, "kind": "shim", "device_path": "a", "digests": {"sha256": "aa"}}],
            "firmware_blobs": [{"pcr": 0, "base": 1}],
        });
        // dbx's data no longer hashes to its digest (a flipped byte): unverified, not compared;
        // a device path differs (informational): not compared.
        let got = serde_json::json!({
            "secure_boot": "enabled", "dbx": null,
            "unverified": [{"event": 12, "field": "dbx", "reason": "not_bound"}],
            "boot_chain": [{"event": 9, "kind": "other", "device_path": "b", "digests": {"sha256": "aa"}}],
            "firmware_blobs": [{"pcr": 0, "base": 2}],
        });
        let (a, b) = comparable(&want, &got);
        assert_eq!(a, b);
        // A bound field that differs is still a difference, and so is a boot chain digest.
        let mut other = got.clone();
        other["secure_boot"] = serde_json::json!("disabled");
        let (a, b) = comparable(&want, &other);
        assert_eq!(differing_keys(&a, &b), ["secure_boot"]);
        let mut other = got;
        other["boot_chain"][0]["digests"]["sha256"] = serde_json::json!("bb");
        let (a, b) = comparable(&want, &other);
        assert_eq!(differing_keys(&a, &b), ["boot_chain"]);
    }

    #[test]
    fn differing_keys_names_changed_fields() {
        let a = serde_json::json!({"secure_boot": "enabled", "kernel_cmdline": "ro"});
        let b = serde_json::json!({"secure_boot": "disabled", "kernel_cmdline": "ro"});
        assert_eq!(differing_keys(&a, &b), ["secure_boot"]);
    }
}
