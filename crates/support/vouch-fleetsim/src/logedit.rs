//! Consistent edits of real crypto-agile event logs: an event's data and digests change
//! together (every bank re-hashed), so the edited log frames, replays and — where a claim
//! comes from event data — binds that data, exactly as firmware would have measured it.

use vouch_tcglog::data::{EventData, Ipl, VariableContents, guid};
use vouch_tcglog::{Event, EventLog, EventType, LogFormat};
use vouch_tpm2::HashAlg;

use crate::FleetError;

/// What an edited event's digests are the hash of.
#[derive(Debug, Clone)]
pub enum Measured {
    /// The (new) event data itself (variables, S-CRTM version, separators).
    Data,
    /// Other bytes: an image or region the event only describes, or a command line without
    /// its log prefix.
    Bytes(Vec<u8>),
}

/// A change to one event.
#[derive(Debug, Clone)]
pub struct Edit {
    /// New event data (`None`: unchanged).
    pub data: Option<Vec<u8>>,
    /// What the new digests are of.
    pub measured: Measured,
}

/// Rebuild `log` with `edit` applied to the events it returns an edit for.
pub fn rewrite(
    log: &[u8],
    mut edit: impl FnMut(&Event<'_>) -> Option<Edit>,
) -> Result<Vec<u8>, FleetError> {
    let parsed = EventLog::parse(log)?;
    if parsed.format() != LogFormat::CryptoAgile {
        return Err(FleetError::Edit("only crypto-agile logs are edited"));
    }
    let mut out = Vec::with_capacity(log.len().saturating_add(4096));
    let mut copied_to = 0usize;
    let mut changed = 0usize;
    for ev in parsed.events() {
        let ev = ev.map_err(vouch_tcglog::TcgLogError::from)?;
        let end = ev
            .data_offset()
            .checked_add(ev.data().len())
            .ok_or(FleetError::Edit("event end overflows"))?;
        let Some(e) = edit(&ev) else {
            continue;
        };
        changed = changed.saturating_add(1);
        out.extend_from_slice(
            log.get(copied_to..ev.offset())
                .ok_or(FleetError::Edit("event offsets"))?,
        );
        let data = e.data.unwrap_or_else(|| ev.data().to_vec());
        let measured: &[u8] = match &e.measured {
            Measured::Data => &data,
            Measured::Bytes(b) => b,
        };
        out.extend_from_slice(&ev.pcr().to_le_bytes());
        out.extend_from_slice(&ev.event_type().0.to_le_bytes());
        let digests: Vec<_> = ev.digests().iter().collect();
        let count = u32::try_from(digests.len()).map_err(|_| FleetError::Edit("digest count"))?;
        out.extend_from_slice(&count.to_le_bytes());
        for d in digests {
            let alg = d
                .alg()
                .ok_or(FleetError::Edit("digest of an unknown algorithm"))?;
            out.extend_from_slice(&d.alg_id().to_le_bytes());
            out.extend_from_slice(alg.hash(measured).as_bytes());
        }
        let size = u32::try_from(data.len()).map_err(|_| FleetError::Edit("event data size"))?;
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&data);
        copied_to = end;
    }
    if changed == 0 {
        return Err(FleetError::Edit("no event to edit in this log"));
    }
    out.extend_from_slice(log.get(copied_to..).ok_or(FleetError::Edit("log end"))?);
    // The result must frame and replay.
    vouch_tcglog::parse_and_replay(&out)?;
    Ok(out)
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn is_blob(ev: &Event<'_>) -> bool {
    ev.pcr() == 0
        && matches!(
            ev.event_type(),
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB | EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2
        )
}

/// A firmware update: a new S-CRTM version string (bound, digest of the data) and every
/// firmware volume measured anew.
pub fn new_firmware(log: &[u8], version: &str) -> Result<Vec<u8>, FleetError> {
    let mut blob = 0u32;
    rewrite(log, |ev| {
        if ev.pcr() == 0 && ev.event_type() == EventType::EV_S_CRTM_VERSION {
            Some(Edit {
                data: Some(utf16z(version)),
                measured: Measured::Data,
            })
        } else if is_blob(ev) {
            blob = blob.saturating_add(1);
            Some(Edit {
                data: None,
                measured: Measured::Bytes(format!("{version} firmware volume {blob}").into_bytes()),
            })
        } else {
            None
        }
    })
}

/// The `n`th (0-based) boot application in PCR 4 now has a different image digest.
pub fn new_boot_application(log: &[u8], n: usize, image: &str) -> Result<Vec<u8>, FleetError> {
    let mut seen = 0usize;
    rewrite(log, |ev| {
        if ev.pcr() == 4 && ev.event_type() == EventType::EV_EFI_BOOT_SERVICES_APPLICATION {
            seen = seen.saturating_add(1);
            if seen == n.saturating_add(1) {
                return Some(Edit {
                    data: None,
                    measured: Measured::Bytes(image.as_bytes().to_vec()),
                });
            }
        }
        None
    })
}

/// The first firmware volume measures differently (a modified BIOS region).
pub fn firmware_blob_changed(log: &[u8]) -> Result<Vec<u8>, FleetError> {
    let mut done = false;
    rewrite(log, |ev| {
        if !done && is_blob(ev) {
            done = true;
            Some(Edit {
                data: None,
                measured: Measured::Bytes(b"implanted firmware volume".to_vec()),
            })
        } else {
            None
        }
    })
}

fn is_var(ev: &Event<'_>, name: &str) -> bool {
    ev.pcr() == 7
        && ev.event_type() == EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        && matches!(ev.decoded(), EventData::Variable(v) if v.name.eq_str(name))
}

/// The `SecureBoot` variable measured as 0.
pub fn secure_boot_off(log: &[u8]) -> Result<Vec<u8>, FleetError> {
    rewrite(log, |ev| {
        if !is_var(ev, "SecureBoot") {
            return None;
        }
        let EventData::Variable(v) = ev.decoded() else {
            return None;
        };
        if !matches!(v.contents, VariableContents::Flag { value: Some(1) }) {
            return None;
        }
        let mut data = ev.data().to_vec();
        let last = data.last_mut()?;
        *last = 0;
        Some(Edit {
            data: Some(data),
            measured: Measured::Data,
        })
    })
}

/// db gains an `EFI_SIGNATURE_LIST` with one X.509 certificate (`der`).
pub fn db_cert_added(log: &[u8], der: &[u8]) -> Result<Vec<u8>, FleetError> {
    rewrite(log, |ev| {
        if !is_var(ev, "db") {
            return None;
        }
        let EventData::Variable(v) = ev.decoded() else {
            return None;
        };
        if v.guid != guid::EFI_IMAGE_SECURITY_DATABASE {
            return None;
        }
        let sig_size = u32::try_from(der.len().checked_add(16)?).ok()?;
        let list_size = sig_size.checked_add(28)?;
        let mut list = Vec::new();
        list.extend_from_slice(guid::EFI_CERT_X509.as_bytes());
        list.extend_from_slice(&list_size.to_le_bytes());
        list.extend_from_slice(&0u32.to_le_bytes());
        list.extend_from_slice(&sig_size.to_le_bytes());
        list.extend_from_slice(&[0x77; 16]); // SignatureOwner
        list.extend_from_slice(der);
        // UEFI_VARIABLE_DATA: GUID, name length (u64), data length (u64), name, data.
        let mut data = ev.data().to_vec();
        let len_at = 24usize;
        let old = u64::from_le_bytes(data.get(len_at..len_at.checked_add(8)?)?.try_into().ok()?);
        let new = old.checked_add(u64::try_from(list.len()).ok()?)?;
        data.get_mut(len_at..len_at.checked_add(8)?)?
            .copy_from_slice(&new.to_le_bytes());
        let name_end = 32usize.checked_add(v.name.units().count().checked_mul(2)?)?;
        let data_end = name_end.checked_add(usize::try_from(old).ok()?)?;
        let tail = data.split_off(data_end);
        data.extend_from_slice(&list);
        data.extend_from_slice(&tail);
        Some(Edit {
            data: Some(data),
            measured: Measured::Data,
        })
    })
}

/// The kernel command line (GRUB `kernel_cmdline`, PCR 8) gains `extra`; the digest is of
/// the command line without its log prefix, as GRUB measures it.
pub fn cmdline_changed(log: &[u8], extra: &str) -> Result<Vec<u8>, FleetError> {
    rewrite(log, |ev| {
        if ev.pcr() != 8 || ev.event_type() != EventType::EV_IPL {
            return None;
        }
        let EventData::Ipl(Ipl::KernelCmdline(c)) = ev.decoded() else {
            return None;
        };
        let text = ev.data();
        let prefix_len = std::str::from_utf8(text).ok()?.find(c)?;
        let prefix = text.get(..prefix_len)?;
        let cmd = format!("{} {extra}", c.trim_end_matches('\0'));
        let mut data = prefix.to_vec();
        data.extend_from_slice(cmd.as_bytes());
        if text.last() == Some(&0) {
            data.push(0);
        }
        Some(Edit {
            data: Some(data),
            measured: Measured::Bytes(cmd.into_bytes()),
        })
    })
}

/// The digest of `s` in SHA-256 (for tests).
#[must_use]
pub fn sha256_hex(s: &[u8]) -> String {
    HashAlg::Sha256.hash(s).to_hex()
}
