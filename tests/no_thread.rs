//! `#[cached]` starts no thread: the library keeps time and reports its counters without a
//! thread of its own unless the user starts a reporter. The one test of this binary, so that
//! no other test's threads come and go while it counts the process's threads.

use std::time::Duration;

use resilience::cached;

#[cached(ttl = "60s", max_entries = 100)]
async fn square(n: u64) -> Result<u64, String> {
    if n == 0 {
        return Err("zero".to_string());
    }
    Ok(n * n)
}

#[cached(ttl = "1s")]
fn cube(n: u64) -> Option<u64> {
    (n > 0).then_some(n * n * n)
}

/// The threads of this process now (Linux: one entry per thread in `/proc/self/task`).
#[cfg(target_os = "linux")]
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task on Linux")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn cached_calls_start_no_thread() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let before = threads();
    runtime.block_on(async {
        for n in [0, 1, 2, 1, 2, 0] {
            let _ = square(n).await;
        }
    });
    for n in [0, 3, 3] {
        let _ = cube(n);
    }
    // Past the first report's second, and past `cube`'s ttl: both read the clock again.
    std::thread::sleep(Duration::from_millis(1100));
    runtime.block_on(async {
        assert_eq!(square(2).await, Ok(4));
    });
    assert_eq!(cube(3), Some(27));
    let counts = square_cache().counts();
    assert_eq!((counts.hits, counts.loads, counts.load_errors), (3, 4, 2));
    assert_eq!(cube_cache().counts().loads, 3);
    let _ = resilience::stats();
    assert_eq!(threads(), before, "a thread was started");
}
