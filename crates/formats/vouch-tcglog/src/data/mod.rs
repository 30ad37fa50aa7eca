//! stub
/// stub
#[derive(Debug)]
pub enum EventData {}
