//! The whole behaviour suite on a three-node Redis Cluster with a hash-tag prefix.

mod support;

use support::{scenarios, RedisCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_on_a_three_node_cluster_with_a_hash_tag_prefix() {
    let cluster = RedisCluster::start();
    // GIVEN the prefix {bull}: every key of a queue hashes to one slot
    scenarios::all(&cluster.url(), "{bull}").await;
    // THEN all of the suite's keys live on a single node (one slot), none elsewhere
    let per_node: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|n| {
            n.cli(&["--scan", "--pattern", "{bull}:*"])
                .lines()
                .filter(|l| !l.is_empty())
                .count()
        })
        .collect();
    assert_eq!(
        per_node.iter().filter(|c| **c > 0).count(),
        1,
        "keys per node: {per_node:?}"
    );
}
