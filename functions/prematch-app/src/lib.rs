//! prematch-app (skeleton; see its issue).
