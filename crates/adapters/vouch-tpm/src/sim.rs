//! The simulated TPM behind the [`Tpm`] trait.

use vouch_sim::SimTpm;
use vouch_tpm2::PcrSelection;

use crate::{Quote, Tpm, TpmError};

impl Tpm for SimTpm {
    fn ek_public(&mut self) -> Result<Vec<u8>, TpmError> {
        Ok(SimTpm::ek_public(self).to_vec())
    }

    fn ek_certificate(&mut self) -> Result<Option<Vec<u8>>, TpmError> {
        Ok(Some(SimTpm::ek_certificate(self).to_vec()))
    }

    fn ak_public(&mut self) -> Result<Vec<u8>, TpmError> {
        Ok(SimTpm::ak_public(self)?)
    }

    fn activate_credential(
        &mut self,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        Ok(SimTpm::activate_credential(
            self,
            id_object,
            encrypted_secret,
        )?)
    }

    fn quote(&mut self, nonce: &[u8], selection: &PcrSelection) -> Result<Quote, TpmError> {
        let q = SimTpm::quote(self, nonce, selection)?;
        Ok(Quote {
            attest: q.attest,
            signature: q.signature,
            pcrs: q.pcrs,
        })
    }
}
