//! Our Lua scripts, assembled from `src/scripts/*.lua` (shared helpers prepended) and run by EVALSHA.

use fred::prelude::*;
use fred::types::scripts::Script;
use fred::types::{FromValue, MultipleKeys, MultipleValues};

use crate::error::QueueError;

/// Every script of the crate, hashed once.
pub(crate) struct Scripts {
    pub add: Script,
    pub claim: Script,
    pub finish: Script,
    pub stalled: Script,
    pub extend_locks: Script,
    pub pause: Script,
    pub progress: Script,
    pub reprocess: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            add: Script::from_lua(concat!(
                include_str!("scripts/common.lua"),
                include_str!("scripts/add.lua")
            )),
            claim: Script::from_lua(concat!(
                include_str!("scripts/common.lua"),
                include_str!("scripts/worker_common.lua"),
                include_str!("scripts/claim.lua")
            )),
            finish: Script::from_lua(concat!(
                include_str!("scripts/common.lua"),
                include_str!("scripts/worker_common.lua"),
                include_str!("scripts/finish.lua")
            )),
            stalled: Script::from_lua(include_str!("scripts/stalled.lua")),
            extend_locks: Script::from_lua(include_str!("scripts/extend_locks.lua")),
            pause: Script::from_lua(include_str!("scripts/pause.lua")),
            progress: Script::from_lua(include_str!("scripts/progress.lua")),
            reprocess: Script::from_lua(include_str!("scripts/reprocess.lua")),
        }
    }
}

/// EVALSHA, loading the script on NOSCRIPT (script caches vanish on restart or failover).
pub(crate) async fn run<R, K, V>(
    script: &Script,
    client: &Client,
    keys: K,
    args: V,
) -> Result<R, QueueError>
where
    R: FromValue,
    K: Into<MultipleKeys> + Send,
    V: TryInto<MultipleValues> + Send,
    V::Error: Into<fred::error::Error> + Send,
{
    Ok(script.evalsha_with_reload(client, keys, args).await?)
}
