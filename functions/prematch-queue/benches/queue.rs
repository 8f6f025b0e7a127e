//! Queue benchmark (placeholder until the BullMQ comparison lands).
fn main() {}
