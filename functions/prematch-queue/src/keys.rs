//! Key names of one queue: `{prefix}:{queue}:{suffix}`, as BullMQ lays them out.

/// The key names of one queue.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    /// `{prefix}:{queue}:` with the trailing colon; job hashes are this plus the id.
    pub base: String,
}

impl Keys {
    pub fn new(prefix: &str, name: &str) -> Keys {
        Keys {
            base: format!("{prefix}:{name}:"),
        }
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.base, suffix)
    }

    pub fn job(&self, id: &str) -> String {
        format!("{}{}", self.base, id)
    }

    /// KEYS of claim.lua / finish.lua, in their order.
    pub fn worker_keys(&self) -> Vec<String> {
        [
            "wait",
            "active",
            "prioritized",
            "delayed",
            "meta",
            "marker",
            "events",
            "limiter",
            "pc",
            "completed",
            "failed",
            "stalled",
        ]
        .iter()
        .map(|s| self.key(s))
        .collect()
    }
}
