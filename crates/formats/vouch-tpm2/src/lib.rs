//! TPM 2.0 structures for remote attestation, decoded from the raw bytes a TPM produced.
//!
//! Implements, from the TCG *TPM 2.0 Library* specification, Family "2.0", Level 00,
//! Revision 01.59 (Part 2: Structures; Part 1 §24 and Annex B/C for credential protection):
//! `TPMS_ATTEST` (quote and certify), `TPMT_SIGNATURE`, `TPMT_PUBLIC` with name computation,
//! `TPML_PCR_SELECTION`, `TPML_DIGEST`, quote verification and `TPM2_MakeCredential` as the
//! verifier computes it.
//!
//! Trust assumptions: every byte handed to this crate is untrusted. Decoders never panic and
//! never allocate more than the input's size. Signatures are checked over the raw bytes
//! received, never over a re-encoding. The AK public key is trusted only as far as the caller
//! has bound it to an EK (see [`credential`]).

pub mod alg;
pub mod attest;
pub mod credential;
pub mod pcr;
pub mod public;
pub mod quote;
pub mod signature;
pub mod tpm12;
pub mod tpm2_tools;

pub use alg::{Digest, DigestLengthError, HashAlg, Hasher, MAX_DIGEST};
pub use attest::{Attest, AttestType, Attested, ClockInfo};
pub use credential::{CredentialBlob, CredentialError, EkPublic, make_credential};
pub use pcr::{PcrBankSelection, PcrSelection, PcrSelectionError, PcrValues};
pub use public::{EccCurve, ObjectAttributes, PublicArea, PublicKey};
pub use quote::{AkVerifier, QuoteError, VerifiedQuote, verify_quote};
pub use signature::Signature;
