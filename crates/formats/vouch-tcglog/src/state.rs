//! stub
/// stub
#[derive(Debug)]
pub struct MachineState;
