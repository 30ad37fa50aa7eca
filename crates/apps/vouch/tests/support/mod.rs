pub mod guest;
pub mod swtpm;
pub mod verifier;
