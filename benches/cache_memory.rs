//! Memory per entry of a cache holding 1 000 000 `u64 -> u64` entries: ours (`Cache<u64, u64>`
//! and a `#[cached]` function's own cache), `quick_cache` 0.7, `moka` 0.12 and the `cached`
//! crate's `#[cached]` (a `TimedSizedCache`).
//!
//! Not a criterion benchmark: it counts the bytes each cache asks of the allocator
//! (`stats_alloc`'s instrumented global allocator: bytes allocated less bytes freed while the
//! cache is built and filled), divides by the entries it holds at the end, and prints a
//! markdown table. It also writes the figures to `target/criterion/cache_memory.json` for
//! `benches/table.sh cache`. Each cache is bounded to 1 000 000 entries (with a 60 s ttl where
//! it has one) and filled with keys `0..1_000_000`; what an entry costs is the allocator's
//! requested sizes, so the allocator's own rounding is not counted for anyone.
//!
//! ```text
//! cargo bench -p resilience-benches --bench cache_memory
//! ```

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use resilience::cache::{Cache, CacheSpec, Freshness};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Entries in each cache.
const ENTRIES: u64 = 1_000_000;

const TTL: Duration = Duration::from_secs(60);

/// The error type of the cached functions. Never produced.
#[derive(Debug, Clone)]
struct MyErr;

#[resilience::cached(ttl = "60s", max_entries = 1_000_000)]
async fn ours(id: u64) -> Result<u64, MyErr> {
    Ok(black_box(id) * 2)
}

#[cached::proc_macro::cached(time = 60, size = 1_000_000, result = true)]
async fn theirs(id: u64) -> Result<u64, MyErr> {
    Ok(black_box(id) * 2)
}

/// Builds and fills a cache with `fill` (which returns it and the entries it holds), and
/// returns the net bytes allocated meanwhile and the entries held.
fn measure<C>(fill: impl FnOnce() -> (C, u64)) -> (i64, u64) {
    let region = Region::new(GLOBAL);
    let (cache, entries) = fill();
    let change = region.change();
    drop(black_box(cache));
    let net = change.bytes_allocated as i64 - change.bytes_deallocated as i64;
    (net, entries)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let mut rows: Vec<(&str, i64, u64)> = Vec::new();

    let (bytes, entries) = measure(|| {
        let cache: Cache<u64, u64> = Cache::new(CacheSpec::new(TTL).max_entries(ENTRIES));
        for key in 0..ENTRIES {
            cache.insert(key, key * 2, Freshness::Positive);
        }
        let len = cache.len() as u64;
        (cache, len)
    });
    rows.push(("resilience_cache", bytes, entries));

    // The function's cache lives for the whole process, so nothing is dropped here.
    let (bytes, entries) = measure(|| {
        rt.block_on(async {
            for key in 0..ENTRIES {
                let _ = black_box(ours(key).await);
            }
        });
        let counts = ours_cache().counts();
        ((), counts.loads - counts.evictions)
    });
    rows.push(("resilience_cached_fn", bytes, entries));

    let (bytes, entries) = measure(|| {
        let cache = quick_cache::sync::Cache::<u64, u64>::new(ENTRIES as usize);
        for key in 0..ENTRIES {
            cache.insert(key, key * 2);
        }
        let len = cache.len() as u64;
        (cache, len)
    });
    rows.push(("quick_cache", bytes, entries));

    let (bytes, entries) = measure(|| {
        let cache = moka::sync::Cache::<u64, u64>::builder()
            .max_capacity(ENTRIES)
            .time_to_live(TTL)
            .build();
        for key in 0..ENTRIES {
            cache.insert(key, key * 2);
        }
        cache.run_pending_tasks();
        let len = cache.entry_count();
        (cache, len)
    });
    rows.push(("moka_sync", bytes, entries));

    let (bytes, entries) = measure(|| {
        rt.block_on(async {
            for key in 0..ENTRIES {
                let _ = black_box(theirs(key).await);
            }
        });
        let len = rt.block_on(async {
            use cached::Cached;
            THEIRS.lock().await.cache_size() as u64
        });
        ((), len)
    });
    rows.push(("cached_fn", bytes, entries));

    println!("| cache (1M u64 -> u64) | entries held | bytes | bytes/entry |");
    println!("|---|---:|---:|---:|");
    let mut json = Vec::new();
    for (name, bytes, entries) in &rows {
        let per_entry = *bytes as f64 / (*entries).max(1) as f64;
        println!("| {name} | {entries} | {bytes} | {per_entry:.1} |");
        json.push(format!(
            "\"{name}\": {{\"entries\": {entries}, \"bytes\": {bytes}, \"per_entry\": {per_entry:.2}}}"
        ));
    }
    // cargo runs a bench in its package's directory: the workspace's target is beside it.
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let dir = std::path::Path::new(&target).join("criterion");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(
            dir.join("cache_memory.json"),
            format!("{{{}}}\n", json.join(", ")),
        );
    }
}
