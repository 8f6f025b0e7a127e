//! prematch-trigger (skeleton).
fn main() {}
