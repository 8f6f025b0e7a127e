//! prematch-engine (skeleton; see its issue).
