//! prematch-check (skeleton).
fn main() {}
