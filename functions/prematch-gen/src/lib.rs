//! prematch-gen (skeleton; see its issue).
