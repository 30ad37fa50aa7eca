//! The same enrolment and quote checks, run against tss-esapi on a real swtpm and against the
//! simulator: both must produce structures the verifier-side code in vouch-tpm2 accepts, and the
//! simulator's EK and AK must be byte-for-byte what the TPM makes, modulo the keys.

#![cfg(feature = "esapi")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code: a failed step is a failed test"
)]

mod support;

use std::time::Instant;

use support::swtpm::Swtpm;
use vouch_sim::{KeyPool, SimTpm, qualified_name};
use vouch_tpm::{Tpm, TpmSpec, open};
use vouch_tpm2::{
    AkVerifier, EkPublic, PcrSelection, PublicArea, PublicKey, VerifiedQuote, make_credential,
    verify_quote,
};

const TPM_RH_ENDORSEMENT: u32 = 0x4000_000B;

struct Enrolled {
    ek: Vec<u8>,
    ak: Vec<u8>,
    verified: VerifiedQuote,
}

fn fresh_bytes(tag: &[u8]) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    vouch_tpm2::HashAlg::Sha256
        .hash_parts(&[tag, &now.to_be_bytes()])
        .as_bytes()
        .to_vec()
}

fn modulus<'a>(area: &PublicArea<'a>) -> &'a [u8] {
    let PublicKey::Rsa { modulus, .. } = area.key() else {
        panic!("not an RSA key")
    };
    modulus
}

/// Enrol `tpm` the way the verifier does (MakeCredential to the EK for the AK name computed
/// from the AK public area; the TPM must return the secret), then verify a quote.
fn enrol_and_quote(tpm: &mut dyn Tpm) -> Enrolled {
    let ek_bytes = tpm.ek_public().unwrap();
    let ek_area = PublicArea::decode_tpmt(&ek_bytes).unwrap();
    let ek = EkPublic::from_public_area(&ek_area).unwrap();

    let cert = tpm
        .ek_certificate()
        .unwrap()
        .expect("an EK certificate in NV");
    let cert = vouch_x509::EkCert::parse(&cert).unwrap();
    assert_eq!(
        cert.summary().public_key.rsa_modulus().unwrap(),
        modulus(&ek_area),
        "the EK certificate certifies the EK"
    );

    let ak_bytes = tpm.ak_public().unwrap();
    let ak_area = PublicArea::decode_tpmt(&ak_bytes).unwrap();
    assert!(ak_area.is_attestation_key());
    assert_eq!(ak_area.attributes().bits(), 0x0005_0072);
    let ak_name = ak_area.name();

    let secret = fresh_bytes(b"secret");
    let blob = make_credential(&ek, &ak_name, &secret).unwrap();
    assert_eq!(
        tpm.activate_credential(&blob.id_object, &blob.encrypted_secret)
            .unwrap(),
        secret
    );
    let mut other_name = ak_name.clone();
    *other_name.last_mut().unwrap() ^= 1;
    let blob = make_credential(&ek, &other_name, &secret).unwrap();
    assert!(
        tpm.activate_credential(&blob.id_object, &blob.encrypted_secret)
            .is_err(),
        "a credential for another AK name must not activate"
    );

    let selection = PcrSelection::parse_spec("sha256:0,1,2,3,4,5,6,7,8,9+sha1:0,7").unwrap();
    let nonce = fresh_bytes(b"nonce");
    let q = tpm.quote(&nonce, &selection).unwrap();
    let ak = AkVerifier::new(&ak_area).unwrap();
    let verified = verify_quote(&ak, &q.attest, &q.signature, &nonce, &q.pcrs).unwrap();
    assert_eq!(q.pcrs.len(), 12);
    assert!(verify_quote(&ak, &q.attest, &q.signature, b"other nonce", &q.pcrs).is_err());
    // qualifiedSigner is the AK's qualified name under the EK in the endorsement hierarchy.
    let ek_qn = qualified_name(&TPM_RH_ENDORSEMENT.to_be_bytes(), &ek_area.name());
    assert_eq!(verified.qualified_signer, qualified_name(&ek_qn, &ak_name));
    assert!(verified.clock_info.safe);
    Enrolled {
        ek: ek_bytes,
        ak: ak_bytes,
        verified,
    }
}

fn swtpm_spec(tpm: &Swtpm) -> TpmSpec {
    TpmSpec::Swtpm {
        host: "127.0.0.1".into(),
        port: tpm.port,
    }
}

/// Every PCR of both banks, as a fresh TPM has them after TPM2_Startup(CLEAR).
fn reset_values(tpm: &mut dyn Tpm) -> vouch_tpm2::PcrValues {
    let all = (0..24).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let sel = PcrSelection::parse_spec(&format!("sha256:{all}+sha1:{all}")).unwrap();
    tpm.quote(b"reset", &sel).unwrap().pcrs
}

#[test]
fn esapi_on_swtpm_and_the_simulator_pass_the_same_enrolment_and_quote() {
    let swtpm = Swtpm::start();
    let state = tempfile::tempdir().unwrap();
    let mut real = open(&swtpm_spec(&swtpm), state.path()).unwrap();
    let keys = KeyPool::generate(2).unwrap();
    let mut sim = SimTpm::builder()
        .ek_key(keys.key(0).unwrap().clone())
        .ak_key(keys.key(1).unwrap().clone())
        .build()
        .unwrap();

    // Reset values first, while both TPMs are fresh: PCR 17-22 all ones, the rest zero.
    let real_reset = reset_values(real.as_mut());
    assert_eq!(real_reset.len(), 48);
    assert_eq!(reset_values(&mut sim), real_reset);

    let from_real = enrol_and_quote(real.as_mut());
    let from_sim = enrol_and_quote(&mut sim);

    // Same template, different keys: every byte but the modulus agrees.
    let without_modulus = |bytes: &[u8]| {
        let area = PublicArea::decode_tpmt(bytes).unwrap();
        assert_eq!(modulus(&area).len(), 256);
        bytes[..bytes.len() - 256].to_vec()
    };
    assert_eq!(
        without_modulus(&from_sim.ek),
        without_modulus(&from_real.ek)
    );
    assert_eq!(
        without_modulus(&from_sim.ak),
        without_modulus(&from_real.ak)
    );
    // And so the names agree once the modulus is swapped in.
    let mut sim_ek_with_real_modulus = without_modulus(&from_sim.ek);
    sim_ek_with_real_modulus
        .extend_from_slice(modulus(&PublicArea::decode_tpmt(&from_real.ek).unwrap()));
    assert_eq!(
        PublicArea::decode_tpmt(&sim_ek_with_real_modulus)
            .unwrap()
            .name(),
        PublicArea::decode_tpmt(&from_real.ek).unwrap().name()
    );
    assert_eq!(from_sim.verified.selection, from_real.verified.selection);
    assert_eq!(from_sim.verified.scheme, from_real.verified.scheme);
    assert_eq!(from_sim.verified.hash, from_real.verified.hash);

    // Latency of the esapi path (AK already loaded), reported for BENCHMARKS.md.
    let sel = PcrSelection::parse_spec("sha256:0,1,2,3,4,5,6,7,8,9+sha1:0,7").unwrap();
    let n = 20u32;
    let t = Instant::now();
    for _ in 0..n {
        real.quote(b"latency", &sel).unwrap();
    }
    eprintln!(
        "esapi quote + PCR read against swtpm: {:.2} ms each ({n} runs)",
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
    );
}

#[test]
fn esapi_ak_persists_across_reopening() {
    let swtpm = Swtpm::start();
    let state = tempfile::tempdir().unwrap();
    let spec = swtpm_spec(&swtpm);
    let first = {
        let mut tpm = open(&spec, state.path()).unwrap();
        tpm.ak_public().unwrap()
    };
    assert!(state.path().join("ak.tpm2").is_file());
    let mut tpm = open(&spec, state.path()).unwrap();
    let again = tpm.ak_public().unwrap();
    assert_eq!(
        PublicArea::decode_tpmt(&again).unwrap().name(),
        PublicArea::decode_tpmt(&first).unwrap().name()
    );
    // The reloaded AK still quotes and activates.
    enrol_and_quote(tpm.as_mut());
    drop(tpm);

    // Another state directory means another AK.
    let other_state = tempfile::tempdir().unwrap();
    let mut other = open(&spec, other_state.path()).unwrap();
    assert_ne!(other.ak_public().unwrap(), first);
}

#[test]
fn sim_spec_opens_a_shared_simulated_host() {
    let dir = tempfile::tempdir().unwrap();
    let spec: TpmSpec = format!("sim:{}", dir.path().join("host").display())
        .parse()
        .unwrap();
    let mut agent = open(&spec, dir.path()).unwrap();
    let enrolled = enrol_and_quote(agent.as_mut());
    // A second process-like handle on the same directory sees the same TPM and AK.
    let mut driver = SimTpm::open_dir(&dir.path().join("host")).unwrap();
    assert_eq!(driver.ak_public().unwrap(), enrolled.ak);
    let log = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../testdata/eventlogs/qemu-ubuntu2004-1.bin"),
    )
    .unwrap();
    driver.boot_with_event_log(&log).unwrap();
    let replay = vouch_tcglog::parse_and_replay(&log).unwrap();
    let sel = PcrSelection::parse_spec("sha256:0,7").unwrap();
    let q = agent.quote(b"after boot", &sel).unwrap();
    assert_eq!(
        q.pcrs.get(vouch_tpm2::HashAlg::Sha256, 7),
        Some(&replay.expected(vouch_tpm2::HashAlg::Sha256, 7))
    );
    assert_eq!(
        std::fs::read(dir.path().join("host").join(vouch_sim::EVENT_LOG_FILE)).unwrap(),
        log
    );
}
