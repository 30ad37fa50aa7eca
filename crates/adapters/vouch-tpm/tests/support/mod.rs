pub mod swtpm;
