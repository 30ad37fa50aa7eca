//! A simulated TPM's directory: keys, certificates, PCRs and counters, event log.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vouch_tpm2::Digest;

use crate::SimError;
use crate::sim::{BANKS, EVENT_LOG_FILE, State};

pub(crate) const EK_KEY: &str = "ek.pk8";
pub(crate) const AK_KEY: &str = "ak.pk8";
pub(crate) const EK_CERT: &str = "ek-cert.der";
pub(crate) const CA_CERT: &str = "ca-cert.der";
pub(crate) const CA_KEY: &str = "ca.pk8";
const STATE: &str = "state.json";
const LOCK: &str = "lock";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: u32,
    reset_count: u32,
    restart_count: u32,
    clock_epoch_unix_ms: u64,
    last_clock_ms: u64,
    /// bank name -> 24 PCR values in hex.
    pcrs: BTreeMap<String, Vec<String>>,
}

/// True when `dir` holds a complete simulated TPM.
pub(crate) fn exists(dir: &Path) -> bool {
    dir.join(EK_KEY).is_file()
}

/// An exclusive lock on `dir`, released when the file is dropped.
pub(crate) fn lock(dir: &Path) -> Result<File, SimError> {
    let path = dir.join(LOCK);
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(SimError::io(&path))?;
    f.lock().map_err(SimError::io(&path))?;
    Ok(f)
}

/// Write `bytes` to `path` atomically: a sibling temporary file, then rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).map_err(SimError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(SimError::io(path))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, SimError> {
    std::fs::read(path).map_err(SimError::io(path))
}

pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, SimError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SimError::io(path)(e)),
    }
}

pub(crate) fn save_state(dir: &Path, state: &State) -> Result<(), SimError> {
    let mut pcrs = BTreeMap::new();
    for (alg, bank) in BANKS.iter().zip(state.pcrs.iter()) {
        pcrs.insert(
            alg.name().to_owned(),
            bank.iter().map(Digest::to_hex).collect(),
        );
    }
    let file = StateFile {
        format: FORMAT,
        reset_count: state.reset_count,
        restart_count: state.restart_count,
        clock_epoch_unix_ms: state.clock_epoch_unix_ms,
        last_clock_ms: state.last_clock_ms,
        pcrs,
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| SimError::CorruptState {
        path: dir.join(STATE),
        reason: e.to_string(),
    })?;
    if state.log_changed {
        write_atomic(&dir.join(EVENT_LOG_FILE), &state.event_log)?;
    }
    write_atomic(&dir.join(STATE), &json)
}

pub(crate) fn load_state(dir: &Path) -> Result<State, SimError> {
    let path = dir.join(STATE);
    let corrupt = |reason: String| SimError::CorruptState {
        path: path.clone(),
        reason,
    };
    let file: StateFile =
        serde_json::from_slice(&read(&path)?).map_err(|e| corrupt(e.to_string()))?;
    if file.format != FORMAT {
        return Err(corrupt(format!(
            "format {} (expected {FORMAT})",
            file.format
        )));
    }
    let mut state = State::fresh();
    for (alg, bank) in BANKS.iter().zip(state.pcrs.iter_mut()) {
        let values = file
            .pcrs
            .get(alg.name())
            .ok_or_else(|| corrupt(format!("no {alg} bank")))?;
        if values.len() != bank.len() {
            return Err(corrupt(format!("{alg} bank has {} PCRs", values.len())));
        }
        for (slot, hex) in bank.iter_mut().zip(values) {
            *slot = Digest::from_hex(*alg, hex).map_err(|e| corrupt(e.to_string()))?;
        }
    }
    state.reset_count = file.reset_count;
    state.restart_count = file.restart_count;
    state.clock_epoch_unix_ms = file.clock_epoch_unix_ms;
    state.last_clock_ms = file.last_clock_ms;
    state.event_log = read_optional(&dir.join(EVENT_LOG_FILE))?.unwrap_or_default();
    state.log_changed = false;
    Ok(state)
}
