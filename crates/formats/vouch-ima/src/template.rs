//! Template descriptors and fields (`security/integrity/ima/ima_template.c`,
//! `ima_template_lib.c`; Documentation/security/IMA-templates.rst).
//!
//! A builtin template name maps to its field list; any other name is read as a custom
//! descriptor, the field ids joined by `|` (as `ima_template_fmt=` and the kernel list print
//! it). Unknown field ids are kept, with their bytes, as [`FieldId::Unknown`].

use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

/// The most fields a descriptor may have (`IMA_TEMPLATE_NUM_FIELDS_MAX`).
pub const MAX_FIELDS: usize = 15;

/// The builtin templates: (name, field format).
pub const BUILTIN_TEMPLATES: [(&str, &str); 8] = [
    ("ima", "d|n"),
    ("ima-ng", "d-ng|n-ng"),
    ("ima-ngv2", "d-ngv2|n-ng"),
    ("ima-sig", "d-ng|n-ng|sig"),
    ("ima-sigv2", "d-ngv2|n-ng|sig"),
    ("ima-buf", "d-ng|n-ng|buf"),
    ("ima-modsig", "d-ng|n-ng|sig|d-modsig|modsig"),
    (
        "evm-sig",
        "d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode",
    ),
];

/// A template field id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldId {
    /// `d`: SHA-1 (or MD5) file digest, no algorithm prefix.
    D,
    /// `n`: event name, at most 255 bytes.
    N,
    /// `d-ng`: `<algo>:\0` + file digest.
    DNg,
    /// `n-ng`: event name of any length, NUL-terminated.
    NNg,
    /// `d-ngv2`: `<type>:<algo>:\0` + digest (type `ima` or `verity`).
    DNgV2,
    /// `sig`: the file signature from `security.ima` (digsig v2/v3 header + signature).
    Sig,
    /// `buf`: the measured buffer (ima-buf: kexec command line, keys, ...).
    Buf,
    /// `d-modsig`: digest of the file without its appended signature.
    DModsig,
    /// `modsig`: the appended (PKCS#7) signature.
    Modsig,
    /// `evmsig`: the EVM portable signature.
    Evmsig,
    /// `xattrnames`: `|`-separated xattr names.
    XattrNames,
    /// `xattrlengths`: u32 length per xattr.
    XattrLengths,
    /// `xattrvalues`: concatenated xattr values.
    XattrValues,
    /// `iuid`: inode owner.
    Iuid,
    /// `igid`: inode group.
    Igid,
    /// `imode`: inode mode.
    Imode,
    /// A field id this crate does not know; its bytes are kept as they are.
    Unknown,
}

impl FieldId {
    /// The id for its name.
    #[must_use]
    pub fn from_name(name: &[u8]) -> Self {
        match name {
            b"d" => Self::D,
            b"n" => Self::N,
            b"d-ng" => Self::DNg,
            b"n-ng" => Self::NNg,
            b"d-ngv2" => Self::DNgV2,
            b"sig" => Self::Sig,
            b"buf" => Self::Buf,
            b"d-modsig" => Self::DModsig,
            b"modsig" => Self::Modsig,
            b"evmsig" => Self::Evmsig,
            b"xattrnames" => Self::XattrNames,
            b"xattrlengths" => Self::XattrLengths,
            b"xattrvalues" => Self::XattrValues,
            b"iuid" => Self::Iuid,
            b"igid" => Self::Igid,
            b"imode" => Self::Imode,
            _ => Self::Unknown,
        }
    }
}

/// A template: its name as listed and its field format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateDescriptor<'a> {
    name: &'a [u8],
    fmt: &'a [u8],
    field_count: u8,
}

fn valid_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

impl<'a> TemplateDescriptor<'a> {
    /// The descriptor for a listed template name, or `None` when the name is neither a
    /// builtin template nor a `|`-separated list of at most [`MAX_FIELDS`] field ids.
    #[must_use]
    pub fn from_name(name: &'a [u8]) -> Option<Self> {
        let fmt: &'a [u8] = BUILTIN_TEMPLATES
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map_or(name, |(_, f)| f.as_bytes());
        let mut count = 0usize;
        for id in fmt.split(|c| *c == b'|') {
            if !valid_id(id) {
                return None;
            }
            count = count.saturating_add(1);
        }
        if count > MAX_FIELDS {
            return None;
        }
        Some(Self {
            name,
            fmt,
            field_count: u8::try_from(count).ok()?,
        })
    }

    /// The template name as listed.
    #[must_use]
    pub const fn name(&self) -> &'a [u8] {
        self.name
    }

    /// The field format (`d-ng|n-ng|sig`).
    #[must_use]
    pub const fn format(&self) -> &'a [u8] {
        self.fmt
    }

    /// Number of fields.
    #[must_use]
    pub const fn field_count(&self) -> usize {
        self.field_count as usize
    }

    /// The legacy `ima` template, whose list and hash layouts differ from every other one.
    #[must_use]
    pub fn is_legacy_ima(&self) -> bool {
        self.name == b"ima"
    }

    /// The field ids, in order.
    pub fn field_ids(&self) -> impl Iterator<Item = (FieldId, &'a [u8])> + 'a {
        self.fmt
            .split(|c| *c == b'|')
            .map(|id| (FieldId::from_name(id), id))
    }

    /// Check that `data` holds exactly one length-prefixed field per id.
    pub(crate) fn validate(&self, data: &mut Reader<'a>) -> Result<(), DecodeError> {
        for _ in 0..self.field_count {
            let at = data.offset();
            let len = data.u32_le()?;
            let len = usize::try_from(len).map_err(|_| {
                Reader::error_at(DecodeErrorKind::Invalid("field length overflows"), at)
            })?;
            data.skip(len)?;
        }
        if !data.is_empty() {
            return Err(data.error(DecodeErrorKind::TrailingBytes(data.remaining())));
        }
        Ok(())
    }
}

/// One template field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Its id.
    pub id: FieldId,
    /// The id as named in the descriptor.
    pub name: &'a [u8],
    /// Its bytes (without the length prefix).
    pub data: &'a [u8],
}

/// The fields of one entry, in descriptor order.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    ids: core::slice::Split<'a, u8, fn(&u8) -> bool>,
    data: Reader<'a>,
    legacy: bool,
}

fn is_bar(c: &u8) -> bool {
    *c == b'|'
}

impl<'a> Fields<'a> {
    pub(crate) fn new(desc: TemplateDescriptor<'a>, data: &'a [u8]) -> Self {
        Self {
            ids: desc.fmt.split(is_bar as fn(&u8) -> bool),
            data: Reader::new(data),
            legacy: desc.is_legacy_ima(),
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let name = self.ids.next()?;
        let id = FieldId::from_name(name);
        let data = if self.legacy && id == FieldId::D {
            self.data.bytes(crate::list::IMA_LEGACY_DIGEST_LEN).ok()?
        } else {
            let len = self.data.u32_le().ok()?;
            self.data.bytes(usize::try_from(len).ok()?).ok()?
        };
        Some(Field { id, name, data })
    }
}
