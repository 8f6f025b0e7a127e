//! prematch-cli (skeleton).
fn main() {}
