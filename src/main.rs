//! The `livepulse` command.
fn main() {}
