//! Prints how fast the generator produces users: `cargo run --release -p prematch-gen --example gen_throughput -- 1000000`.

use std::time::Instant;

use prematch_gen::{generate, GenConfig};

fn main() {
    let users = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let cfg = GenConfig {
        users,
        regions: 4,
        seed: 1,
        ..GenConfig::default()
    };
    let started = Instant::now();
    let (mut bytes, mut malformed) = (0usize, 0usize);
    for line in generate(&cfg) {
        bytes += line.text.len() + 1;
        malformed += usize::from(line.malformed.is_some());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{users} users ({malformed} malformed, {:.1} MB of JSON lines) in {secs:.2} s: {:.0} users/s",
        bytes as f64 / 1e6,
        users as f64 / secs
    );
}
