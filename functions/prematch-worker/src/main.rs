//! prematch-worker (skeleton).
fn main() {}
