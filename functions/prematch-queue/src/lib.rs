//! prematch-queue (skeleton; see its issue).
