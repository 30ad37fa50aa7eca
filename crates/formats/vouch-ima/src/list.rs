//! Framing of the binary measurement list (`binary_runtime_measurements[_<alg>]`).
//!
//! One entry, as `ima_measurements_show()` in `security/integrity/ima/ima_fs.c` writes it
//! (little-endian unless the kernel ran with `ima_canonical_fmt`, which is also little-endian):
//!
//! ```text
//! u32 pcr
//! [u8; H] template hash      H = 20 in binary_runtime_measurements (SHA-1),
//!                            H = the bank's digest size in binary_runtime_measurements_<alg>
//! u32 template name length, then the name ("ima", "ima-ng", ..., or a custom "d-ng|n-ng|...")
//! template "ima" only:  [u8; 20] file digest, u32 name length, name (no NUL)
//! every other template: u32 template data length, then per field: u32 length, bytes
//! ```
//!
//! The list does not say `H`; [`MeasurementList::parse`] finds it from the first entry (the
//! size whose first entry frames, preferring one whose template hash matches its data), and
//! [`MeasurementList::with_template_hash_alg`] takes it from the caller (who knows which file it
//! read). Nothing here allocates: entries borrow from the input.

use vouch_tpm2::{Digest, HashAlg, Hasher};
use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::template::{Field, FieldId, Fields, TemplateDescriptor};

/// Longest template name accepted (a custom descriptor such as `d-ng|n-ng|sig|d-modsig|modsig`).
pub const MAX_TEMPLATE_NAME: u32 = 255;
/// Largest template data accepted (16 MiB; real entries are at most a few KiB: keys, modsig).
pub const MAX_TEMPLATE_DATA: u32 = 16 * 1024 * 1024;
/// Longest event name of the legacy `ima` template (`IMA_EVENT_NAME_LEN_MAX`).
pub const IMA_EVENT_NAME_LEN_MAX: u32 = 255;
/// File digest size of the legacy `ima` template (SHA-1).
pub const IMA_LEGACY_DIGEST_LEN: usize = 20;

/// The banks a template hash can belong to, in the order [`MeasurementList::parse`] tries them.
/// (SM3-256 has the size of SHA-256; a list of SM3 template hashes must be named explicitly.)
pub const TEMPLATE_HASH_ALGS: [HashAlg; 4] = [
    HashAlg::Sha1,
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
];

static ZEROS: [u8; 256] = [0; 256];

/// A binary IMA measurement list over borrowed bytes.
#[derive(Debug, Clone, Copy)]
pub struct MeasurementList<'a> {
    bytes: &'a [u8],
    template_hash_alg: HashAlg,
}

impl<'a> MeasurementList<'a> {
    /// A list whose template hash size is found from its first entry.
    ///
    /// Fails when the input is empty or its first entry frames with no template hash size.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::new(
                DecodeErrorKind::Invalid("empty input: no measurement entries"),
                0,
            ));
        }
        let mut first_err = None;
        let mut framed = None;
        for alg in TEMPLATE_HASH_ALGS {
            match decode_entry(&mut Reader::new(bytes), alg, 0) {
                Ok(entry) => {
                    if !entry.is_violation() && entry.template_hash_matches() {
                        return Ok(Self {
                            bytes,
                            template_hash_alg: alg,
                        });
                    }
                    framed.get_or_insert(alg);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match (framed, first_err) {
            (Some(alg), _) => Ok(Self {
                bytes,
                template_hash_alg: alg,
            }),
            (None, Some(e)) => Err(e),
            (None, None) => Err(DecodeError::new(
                DecodeErrorKind::Invalid("not an IMA measurement list"),
                0,
            )),
        }
    }

    /// A list whose template hashes are of `alg` (e.g. `binary_runtime_measurements_sha256`).
    #[must_use]
    pub const fn with_template_hash_alg(bytes: &'a [u8], alg: HashAlg) -> Self {
        Self {
            bytes,
            template_hash_alg: alg,
        }
    }

    /// The algorithm of the template hashes.
    #[must_use]
    pub const fn template_hash_alg(&self) -> HashAlg {
        self.template_hash_alg
    }

    /// The raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every entry, lazily; stops after the first error (a truncated tail is such an error).
    #[must_use]
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            reader: Reader::new(self.bytes),
            alg: self.template_hash_alg,
            index: 0,
            done: false,
        }
    }

    /// Entries of a list *tail* whose first entry has index `first_index` in the whole list
    /// (what an agent sends for an incremental attestation).
    #[must_use]
    pub fn entries_from(&self, first_index: u64) -> Entries<'a> {
        Entries {
            reader: Reader::new(self.bytes),
            alg: self.template_hash_alg,
            index: first_index,
            done: false,
        }
    }
}

/// The lazy entry iterator of a [`MeasurementList`].
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    reader: Reader<'a>,
    alg: HashAlg,
    index: u64,
    done: bool,
}

impl<'a> Entries<'a> {
    /// Byte offset of the next entry.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.reader.offset()
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.reader.is_empty() {
            return None;
        }
        match decode_entry(&mut self.reader, self.alg, self.index) {
            Ok(e) => {
                self.index = self.index.saturating_add(1);
                Some(Ok(e))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// One measurement entry, borrowed from the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    index: u64,
    offset: usize,
    pcr: u32,
    template_hash_alg: HashAlg,
    template_hash: &'a [u8],
    template_name: &'a [u8],
    descriptor: TemplateDescriptor<'a>,
    data: &'a [u8],
}

fn decode_entry<'a>(
    r: &mut Reader<'a>,
    alg: HashAlg,
    index: u64,
) -> Result<Entry<'a>, DecodeError> {
    let offset = r.offset();
    let pcr = r.u32_le()?;
    let template_hash = r.bytes(alg.digest_len())?;
    let name_at = r.offset();
    let name_len = r.u32_le()?;
    if name_len == 0 || name_len > MAX_TEMPLATE_NAME {
        return Err(Reader::error_at(
            DecodeErrorKind::BadValue {
                what: "template name length",
                value: name_len.into(),
            },
            name_at,
        ));
    }
    let template_name = r.bytes(usize::try_from(name_len).unwrap_or(usize::MAX))?;
    let descriptor = TemplateDescriptor::from_name(template_name).ok_or_else(|| {
        Reader::error_at(
            DecodeErrorKind::Invalid("template name is not a template descriptor"),
            name_at,
        )
    })?;
    let data = if descriptor.is_legacy_ima() {
        // "ima": 20-byte digest, then u32 length + event name, no template data length.
        let start = r.clone();
        r.skip(IMA_LEGACY_DIGEST_LEN)?;
        let n_at = r.offset();
        let n = r.u32_le()?;
        if n > IMA_EVENT_NAME_LEN_MAX {
            return Err(Reader::error_at(
                DecodeErrorKind::TooLong {
                    length: n.into(),
                    limit: IMA_EVENT_NAME_LEN_MAX.into(),
                },
                n_at,
            ));
        }
        r.skip(usize::try_from(n).unwrap_or(usize::MAX))?;
        let consumed = r.offset().saturating_sub(start.offset());
        start.rest().get(..consumed).unwrap_or_default()
    } else {
        let mut sub = r.sized_u32_le(MAX_TEMPLATE_DATA)?;
        let data = sub.rest();
        descriptor.validate(&mut sub)?;
        data
    };
    Ok(Entry {
        index,
        offset,
        pcr,
        template_hash_alg: alg,
        template_hash,
        template_name,
        descriptor,
        data,
    })
}

impl<'a> Entry<'a> {
    /// Position of this entry in the whole list (0 = boot_aggregate on a real system).
    #[must_use]
    pub const fn index(&self) -> u64 {
        self.index
    }
    /// Byte offset of this entry in its input.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }
    /// The PCR the kernel extended (10 unless the IMA policy says `pcr=`).
    #[must_use]
    pub const fn pcr(&self) -> u32 {
        self.pcr
    }
    /// The template hash as listed.
    #[must_use]
    pub const fn template_hash_bytes(&self) -> &'a [u8] {
        self.template_hash
    }
    /// The algorithm of the template hash.
    #[must_use]
    pub const fn template_hash_alg(&self) -> HashAlg {
        self.template_hash_alg
    }
    /// The template name as listed (`ima-ng`, or a custom descriptor such as `d-ng|n-ng`).
    #[must_use]
    pub const fn template_name(&self) -> &'a [u8] {
        self.template_name
    }
    /// The template descriptor (its fields).
    #[must_use]
    pub const fn descriptor(&self) -> &TemplateDescriptor<'a> {
        &self.descriptor
    }
    /// The template data as listed (for `ima`: digest, u32 length, name).
    #[must_use]
    pub const fn template_data(&self) -> &'a [u8] {
        self.data
    }

    /// A violation (ToMToU / open-writers): the kernel lists an all-zero template hash and
    /// extends all-0xFF into every bank.
    #[must_use]
    pub fn is_violation(&self) -> bool {
        self.template_hash.iter().all(|b| *b == 0)
    }

    /// The template's fields in descriptor order.
    #[must_use]
    pub fn fields(&self) -> Fields<'a> {
        Fields::new(self.descriptor, self.data)
    }

    /// The first field with id `id`.
    #[must_use]
    pub fn field(&self, id: FieldId) -> Option<&'a [u8]> {
        self.fields()
            .find(|f| f.id == id)
            .map(|f: Field<'a>| f.data)
    }

    /// Hash what the kernel hashes for the template digest, with `alg`: the template data
    /// (with field lengths) for every template but `ima`, whose input is the 20-byte digest
    /// followed by the event name zero-padded to 256 bytes.
    #[must_use]
    pub fn compute_template_hash(&self, alg: HashAlg) -> Digest {
        let mut h = Hasher::new(alg);
        self.feed_template(&mut h);
        h.finish()
    }

    pub(crate) fn feed_template(&self, h: &mut Hasher) {
        if self.descriptor.is_legacy_ima() {
            let mut r = Reader::new(self.data);
            let digest = r.bytes(IMA_LEGACY_DIGEST_LEN).unwrap_or_default();
            let name = r
                .u32_le()
                .ok()
                .and_then(|n| r.bytes(usize::try_from(n).ok()?).ok())
                .unwrap_or_default();
            h.update(digest);
            h.update(name);
            let pad = ZEROS.len().saturating_sub(name.len());
            h.update(ZEROS.get(..pad).unwrap_or_default());
        } else {
            h.update(self.data);
        }
    }

    /// True when the listed template hash equals the hash of the template data.
    #[must_use]
    pub fn template_hash_matches(&self) -> bool {
        self.compute_template_hash(self.template_hash_alg)
            .as_bytes()
            == self.template_hash
    }

    /// The template hash as a [`Digest`].
    #[must_use]
    pub fn template_hash(&self) -> Digest {
        Digest::new(self.template_hash_alg, self.template_hash)
            .unwrap_or_else(|_| self.template_hash_alg.zero())
    }
}
