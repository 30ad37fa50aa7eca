pub mod guest;
pub mod inproc;
pub mod swtpm;
pub mod verifier;
