//! Behaviour of `#[cached]` through the facade, on tokio's paused clock: every test counts how
//! often the function's body ran and reads the cache's own counters through the handle
//! `<fn>_cache()`, and asserts exact numbers and exact times.
//!
//! Each test uses its own functions (and its own policy name): a cache site is a `static`,
//! shared by every test of this binary.

mod common;

use common::{ApiError, ms};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilience::cache::{CacheCounts, CachePatch};
use resilience::registry::{self, NamedPolicy, Policies};
use resilience::{HttpError, cached, rate_limited, retry};
use tokio::time::{Instant, advance};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const NS: Duration = Duration::from_nanos(1);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// How many times a function's body ran.
struct Calls(AtomicUsize);

impl Calls {
    const fn new() -> Self {
        Calls(AtomicUsize::new(0))
    }

    /// Counts one run; returns its number, from 1.
    fn run(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn counts(hits: u64, misses: u64, stale: u64, loads: u64, load_errors: u64) -> CacheCounts {
    CacheCounts {
        hits,
        misses,
        stale,
        loads,
        load_errors,
        evictions: 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------------

static EXPIRY: Calls = Calls::new();

#[cached(ttl = "10s")]
async fn expiry(id: u32) -> String {
    format!("{id} #{}", EXPIRY.run())
}

/// An entry is fresh for exactly `ttl`: a hit 1ns before, a miss (and a load) at `ttl`.
#[tokio::test(start_paused = true)]
async fn an_entry_expires_exactly_at_ttl() {
    assert_eq!(expiry(1).await, "1 #1");
    advance(secs(10) - NS).await;
    assert_eq!(expiry(1).await, "1 #1", "fresh 1ns before ttl");
    assert_eq!(EXPIRY.get(), 1);
    advance(NS).await;
    assert_eq!(expiry(1).await, "1 #2", "expired at ttl: loaded again");
    assert_eq!(EXPIRY.get(), 2);
    assert_eq!(expiry_cache().counts(), counts(1, 2, 0, 2, 0));
}

static JITTERED: Calls = Calls::new();

#[cached(ttl = "100s", ttl_jitter = 0.5)]
async fn jittered(id: u32) -> u32 {
    JITTERED.run();
    id
}

/// With `ttl_jitter = 0.5` each entry's ttl is uniform in [50s, 100s]: none expires before
/// 50s, all have expired at 100s, and at 75s some have and some have not.
#[tokio::test(start_paused = true)]
async fn ttl_jitter_spreads_expiry_between_ttl_times_one_minus_j_and_ttl() {
    const KEYS: u32 = 1000;
    for id in 0..KEYS {
        assert_eq!(jittered(id).await, id);
    }
    assert_eq!(JITTERED.get(), 1000);

    advance(secs(50) - NS).await;
    for id in 0..KEYS {
        jittered(id).await;
    }
    assert_eq!(
        JITTERED.get(),
        1000,
        "no entry expires before ttl * (1 - j)"
    );

    advance(secs(25) + NS).await; // t = 75s
    for id in 0..KEYS {
        jittered(id).await;
    }
    let expired_by_75s = JITTERED.get() - 1000;
    assert!(
        (200..=800).contains(&expired_by_75s),
        "about half of the ttls are below 75s; {expired_by_75s} were"
    );

    // Those reloaded at 75s are fresh until at least 125s; every other entry has a ttl in
    // (75s, 100s] and expires by 100s.
    advance(secs(25)).await; // t = 100s
    for id in 0..KEYS {
        jittered(id).await;
    }
    let expired_by_100s = JITTERED.get() - 1000 - expired_by_75s;
    assert_eq!(expired_by_100s, 1000 - expired_by_75s, "all gone at ttl");
    let counts = jittered_cache().counts();
    assert_eq!(counts.loads, 2000);
    assert_eq!(counts.evictions, 0);
}

// ---------------------------------------------------------------------------------------------
// Single-flight
// ---------------------------------------------------------------------------------------------

static STAMPEDE: Calls = Calls::new();

#[cached(ttl = "60s")]
async fn stampede(id: u32) -> Result<String, ApiError> {
    let run = STAMPEDE.run();
    tokio::time::sleep(ms(10)).await;
    Ok(format!("user {id} #{run}"))
}

/// 1000 callers missing one key together run the body once, and all get its value.
#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_misses_run_the_body_once() {
    let start = Instant::now();
    let tasks: Vec<_> = (0..1000).map(|_| tokio::spawn(stampede(7))).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok("user 7 #1".to_string()));
    }
    assert_eq!(start.elapsed(), ms(10), "everyone waited for the one load");
    assert_eq!(STAMPEDE.get(), 1);
    assert_eq!(stampede_cache().counts(), counts(0, 1000, 0, 1, 0));
    assert_eq!(stampede(7).await, Ok("user 7 #1".to_string()));
    assert_eq!(stampede_cache().counts(), counts(1, 1000, 0, 1, 0));
}

static CANCELLED: Calls = Calls::new();

/// The first run never finishes (its caller is aborted); later runs take 10ms.
#[cached(ttl = "60s")]
async fn cancelled_leader(id: u32) -> String {
    let run = CANCELLED.run();
    if run == 1 {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(ms(10)).await;
    format!("{id} #{run}")
}

/// A leader whose load is cancelled mid-way does not wedge the 50 callers waiting on it: one
/// of them takes over, the body runs exactly once more, and everyone gets that value.
#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_is_taken_over_by_exactly_one_waiter() {
    let leader = tokio::spawn(cancelled_leader(1));
    tokio::time::sleep(ms(1)).await;
    assert_eq!(CANCELLED.get(), 1, "the leader is loading");
    let waiters: Vec<_> = (0..50).map(|_| tokio::spawn(cancelled_leader(1))).collect();
    tokio::time::sleep(ms(1)).await;
    assert_eq!(CANCELLED.get(), 1, "the waiters wait");
    let aborted_at = Instant::now();
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), "1 #2");
    }
    assert_eq!(
        aborted_at.elapsed(),
        ms(10),
        "one 10ms load after the abort"
    );
    assert_eq!(CANCELLED.get(), 2, "the body ran exactly once more");
    assert_eq!(
        cancelled_leader(1).await,
        "1 #2",
        "and that value is cached"
    );
    assert_eq!(CANCELLED.get(), 2);
    assert_eq!(cancelled_leader_cache().counts().loads, 2);
}

static PANICKING: Calls = Calls::new();

/// The first run panics after 5ms; later runs take 10ms.
#[cached(ttl = "60s")]
async fn panicking_leader(id: u32) -> Option<String> {
    let run = PANICKING.run();
    tokio::time::sleep(ms(5)).await;
    if run == 1 {
        panic!("the first load panics");
    }
    tokio::time::sleep(ms(5)).await;
    Some(format!("{id} #{run}"))
}

/// A leader whose load panics: the panic reaches its caller only; of the 50 callers waiting,
/// one loads again (once) and every one of them gets that value.
#[tokio::test(start_paused = true)]
async fn a_panicking_leader_panics_alone_and_the_body_runs_once_more() {
    let start = Instant::now();
    let leader = tokio::spawn(panicking_leader(1));
    tokio::time::sleep(ms(1)).await;
    let waiters: Vec<_> = (0..50).map(|_| tokio::spawn(panicking_leader(1))).collect();
    assert!(leader.await.unwrap_err().is_panic());
    assert_eq!(start.elapsed(), ms(5));
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), Some("1 #2".to_string()));
    }
    assert_eq!(start.elapsed(), ms(15), "one 10ms load after the panic");
    assert_eq!(PANICKING.get(), 2, "the body ran exactly once more");
    assert_eq!(panicking_leader(1).await, Some("1 #2".to_string()));
    assert_eq!(PANICKING.get(), 2);
}

// ---------------------------------------------------------------------------------------------
// Failures: Err and None
// ---------------------------------------------------------------------------------------------

static NEGATIVE_ERR: Calls = Calls::new();

/// Fails twice, then succeeds.
#[cached(ttl = "60s", negative_ttl = "5s")]
async fn negative_err(id: u32) -> Result<u32, ApiError> {
    if NEGATIVE_ERR.run() <= 2 {
        Err(ApiError::Http(HttpError::new(404)))
    } else {
        Ok(id)
    }
}

/// With `negative_ttl = "5s"`, an `Err` is served from the cache for exactly 5s; an `Ok`
/// afterwards is kept for the full `ttl`.
#[tokio::test(start_paused = true)]
async fn negative_ttl_caches_err_for_exactly_that_long() {
    let not_found = Err(ApiError::Http(HttpError::new(404)));
    assert_eq!(negative_err(1).await, not_found);
    advance(secs(5) - NS).await;
    assert_eq!(negative_err(1).await, not_found);
    assert_eq!(NEGATIVE_ERR.get(), 1, "the Err is cached");
    advance(NS).await;
    assert_eq!(negative_err(1).await, not_found);
    assert_eq!(NEGATIVE_ERR.get(), 2, "for 5s only");
    advance(secs(5)).await;
    assert_eq!(negative_err(1).await, Ok(1));
    advance(secs(60) - NS).await;
    assert_eq!(negative_err(1).await, Ok(1));
    assert_eq!(NEGATIVE_ERR.get(), 3, "the Ok is cached for the ttl");
    assert_eq!(negative_err_cache().counts(), counts(2, 3, 0, 3, 2));
}

static NEGATIVE_NONE: Calls = Calls::new();

/// `None` twice, then `Some`.
#[cached(ttl = "60s", negative_ttl = "5s")]
async fn negative_none(id: u32) -> Option<u32> {
    (NEGATIVE_NONE.run() > 2).then_some(id)
}

/// With `negative_ttl = "5s"`, `None` is served from the cache for exactly 5s.
#[tokio::test(start_paused = true)]
async fn negative_ttl_caches_none_for_exactly_that_long() {
    assert_eq!(negative_none(1).await, None);
    advance(secs(5) - NS).await;
    assert_eq!(negative_none(1).await, None);
    assert_eq!(NEGATIVE_NONE.get(), 1, "the None is cached");
    advance(NS).await;
    assert_eq!(negative_none(1).await, None);
    assert_eq!(NEGATIVE_NONE.get(), 2);
    advance(secs(5)).await;
    assert_eq!(negative_none(1).await, Some(1));
    advance(secs(60) - NS).await;
    assert_eq!(negative_none(1).await, Some(1));
    assert_eq!(NEGATIVE_NONE.get(), 3);
    assert_eq!(negative_none_cache().counts(), counts(2, 3, 0, 3, 2));
}

static UNCACHED_ERR: Calls = Calls::new();

/// Fails three times, then succeeds. The error type need not be `Clone` without
/// `negative_ttl`.
#[cached(ttl = "60s")]
async fn uncached_err(id: u32) -> Result<u32, std::io::Error> {
    if UNCACHED_ERR.run() <= 3 {
        Err(std::io::Error::other("down"))
    } else {
        Ok(id)
    }
}

static UNCACHED_NONE: Calls = Calls::new();

#[cached(ttl = "60s")]
async fn uncached_none(id: u32) -> Option<u32> {
    (UNCACHED_NONE.run() > 3).then_some(id)
}

/// Without `negative_ttl` neither `Err` nor `None` is stored: each call runs the body until
/// one succeeds, and that success is cached.
#[tokio::test(start_paused = true)]
async fn errors_and_none_are_not_cached_without_negative_ttl() {
    for _ in 0..3 {
        assert!(uncached_err(1).await.is_err());
    }
    assert_eq!(UNCACHED_ERR.get(), 3, "every Err ran the body");
    assert_eq!(uncached_err(1).await.unwrap(), 1);
    assert_eq!(uncached_err(1).await.unwrap(), 1);
    assert_eq!(UNCACHED_ERR.get(), 4, "the Ok is cached");
    assert_eq!(uncached_err_cache().counts(), counts(1, 4, 0, 4, 3));

    for _ in 0..3 {
        assert_eq!(uncached_none(1).await, None);
    }
    assert_eq!(uncached_none(1).await, Some(1));
    assert_eq!(uncached_none(1).await, Some(1));
    assert_eq!(UNCACHED_NONE.get(), 4);
    assert_eq!(uncached_none_cache().counts(), counts(1, 4, 0, 4, 3));
}

// ---------------------------------------------------------------------------------------------
// Outage: one load per failure
// ---------------------------------------------------------------------------------------------

static OUTAGE: Calls = Calls::new();

/// A backend that fails after 300ms; the error is `Clone`.
#[cached(ttl = "60s")]
async fn outage(id: u32) -> Result<u32, String> {
    let run = OUTAGE.run();
    tokio::time::sleep(ms(300)).await;
    Err(format!("{id}: down (run {run})"))
}

/// Starts a leader, then `waiters` callers of the same key 1ms later; returns each caller's
/// result with the time it ended at, from the leader's start.
async fn leader_and_waiters<R, Fut>(call: fn() -> Fut, waiters: usize) -> Vec<(R, Duration)>
where
    R: Send + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let start = Instant::now();
    let timed = move || {
        tokio::spawn(async move {
            let result = call().await;
            (result, start.elapsed())
        })
    };
    let mut callers = vec![timed()];
    tokio::time::sleep(ms(1)).await;
    callers.extend((0..waiters).map(|_| timed()));
    let mut ended = Vec::new();
    for caller in callers {
        ended.push(caller.await.expect("a caller panicked"));
    }
    ended
}

/// The outage: a leader and 9 waiters on one key, a backend failing after 300ms. The
/// error is `Clone`, so it is handed to every waiter: one load, and all 10 callers end at
/// 300ms with the leader's error (not at 300, 600, ..., 3000ms after 10 loads).
#[tokio::test(start_paused = true)]
async fn a_failed_load_hands_its_clone_error_to_every_waiter() {
    let ended = leader_and_waiters(|| outage(1), 9).await;
    assert_eq!(ended.len(), 10);
    for (result, at) in ended {
        assert_eq!(result, Err("1: down (run 1)".to_string()));
        assert_eq!(at, ms(300));
    }
    assert_eq!(OUTAGE.get(), 1, "one load");
    assert_eq!(outage_cache().counts(), counts(0, 10, 0, 1, 1));
    assert_eq!(
        outage(1).await,
        Err("1: down (run 2)".to_string()),
        "the failure is not cached: the next call loads again"
    );
}

static OUTAGE_NONE: Calls = Calls::new();

/// A lookup that finds nothing after 300ms.
#[cached(ttl = "60s")]
async fn outage_none(id: u32) -> Option<u32> {
    OUTAGE_NONE.run();
    tokio::time::sleep(ms(300)).await;
    (id == 0).then_some(id)
}

/// A `None` is handed to every waiter too: one load, all done at 300ms.
#[tokio::test(start_paused = true)]
async fn a_none_is_handed_to_every_waiter() {
    let ended = leader_and_waiters(|| outage_none(1), 9).await;
    assert!(ended.iter().all(|ended| *ended == (None, ms(300))));
    assert_eq!(OUTAGE_NONE.get(), 1);
}

static OUTAGE_IO: Calls = Calls::new();

/// The outage with an error that is not `Clone`.
#[cached(ttl = "60s")]
async fn outage_io(id: u32) -> Result<u32, std::io::Error> {
    let run = OUTAGE_IO.run();
    tokio::time::sleep(ms(300)).await;
    Err(std::io::Error::other(format!("{id}: down (run {run})")))
}

/// An error that is not `Clone` cannot be handed on: when the leader's load fails, each of
/// the 9 waiters runs its own load at once, so all end at 600ms (not one after another).
#[tokio::test(start_paused = true)]
async fn a_failure_that_is_not_clone_has_the_waiters_load_at_once() {
    let ended = leader_and_waiters(|| outage_io(1), 9).await;
    let (leader, waiters) = ended.split_first().unwrap();
    assert_eq!(leader.1, ms(300));
    assert_eq!(
        leader.0.as_ref().unwrap_err().to_string(),
        "1: down (run 1)"
    );
    for (result, at) in waiters {
        assert!(result.is_err());
        assert_eq!(*at, ms(600));
    }
    assert_eq!(OUTAGE_IO.get(), 10);
    assert_eq!(outage_io_cache().counts(), counts(0, 10, 0, 10, 10));
}

// ---------------------------------------------------------------------------------------------
// Stale-while-revalidate
// ---------------------------------------------------------------------------------------------

static REVALIDATED: Calls = Calls::new();

/// Each load takes 1s and returns its run number.
#[cached(ttl = "10s", stale_while_revalidate = "30s")]
async fn revalidated(id: u32) -> String {
    let run = REVALIDATED.run();
    tokio::time::sleep(secs(1)).await;
    format!("{id} v{run}")
}

/// Past its ttl and inside the window, an entry is stale: every caller, the first included,
/// gets the stale value at once, while one spawned task refreshes it; the body runs once.
/// Past the window the entry is gone.
#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_stale_and_refreshes_once_in_the_background() {
    let start = Instant::now();
    assert_eq!(revalidated(1).await, "1 v1"); // stored at 1s: fresh until 11s, usable until 41s
    advance(secs(10)).await; // t = 11s: stale

    for _ in 0..10 {
        let served_at = Instant::now();
        assert_eq!(
            revalidated(1).await,
            "1 v1",
            "stale, the first caller included"
        );
        assert_eq!(served_at.elapsed(), Duration::ZERO, "at once");
    }
    tokio::task::yield_now().await;
    assert_eq!(
        REVALIDATED.get(),
        2,
        "one refresh started, in the background"
    );
    advance(secs(1) - NS).await;
    assert_eq!(
        revalidated(1).await,
        "1 v1",
        "stale until the refresh stores"
    );
    advance(NS).await;
    tokio::task::yield_now().await;
    assert_eq!(
        revalidated(1).await,
        "1 v2",
        "fresh once the refresh stored at 12s"
    );
    assert_eq!(start.elapsed(), secs(12));
    assert_eq!(REVALIDATED.get(), 2, "one refresh");
    assert_eq!(revalidated_cache().counts(), counts(1, 1, 11, 2, 0));

    // Stored at 12s: fresh until 22s, usable until 52s.
    advance(secs(40)).await; // t = 52s
    let missed_at = Instant::now();
    assert_eq!(
        revalidated(1).await,
        "1 v3",
        "past the window: a miss waits for a load"
    );
    assert_eq!(missed_at.elapsed(), secs(1));
    assert_eq!(revalidated_cache().counts(), counts(1, 2, 11, 3, 0));
}

static HEAVY: Calls = Calls::new();

/// 100-byte values (a `String` of 100 bytes weighs 124: its own 24 and its buffer) under a
/// bound of 1 KiB.
#[cached(ttl = "600s", max_entries = 1000, max_bytes = "1KiB")]
async fn heavy(id: u32) -> String {
    HEAVY.run();
    format!("{id:0>100}")
}

/// `max_bytes` holds beside `max_entries`: however many values are stored, the ones kept
/// weigh at most the bound, and the cache still keeps some.
#[tokio::test(start_paused = true)]
async fn max_bytes_bounds_the_weight_of_the_values_kept() {
    for id in 0..200 {
        heavy(id).await;
    }
    assert_eq!(HEAVY.get(), 200);
    let kept = heavy_cache().len();
    assert!(
        kept * 124 <= 1024,
        "{kept} values of 124 bytes kept under 1 KiB"
    );
    assert!(kept >= 1, "a bound of 1 KiB keeps values of 124 bytes");
    // the last one stored is kept, and served without a load
    heavy(199).await;
    assert_eq!(HEAVY.get(), 200);
}

static EARLY: Calls = Calls::new();

/// A slow load (100 s, on the paused clock): under `early_refresh = 1.0` the value stops
/// being fresh 100 s * E before it expires, E exponential of mean 1, more than a microsecond
/// but with probability 1e-8.
#[cached(ttl = "600s", early_refresh = 1.0)]
async fn early(id: u32) -> String {
    let run = EARLY.run();
    tokio::time::sleep(secs(100)).await;
    format!("{id} v{run}")
}

/// A hot key is refreshed before it expires: the caller that finds it past its drawn point
/// is served at once, like everyone else, while one refresh runs in the background, and the
/// refreshed value replaces it.
#[tokio::test(start_paused = true)]
async fn early_refresh_reloads_a_hot_key_in_the_background_before_it_expires() {
    assert_eq!(early(1).await, "1 v1"); // stored at 100 s, expires at 700 s
    advance(secs(600) - Duration::from_micros(1)).await;
    for _ in 0..10 {
        let served_at = Instant::now();
        assert_eq!(early(1).await, "1 v1");
        assert_eq!(served_at.elapsed(), Duration::ZERO, "at once");
    }
    tokio::task::yield_now().await;
    assert_eq!(EARLY.get(), 2, "one refresh, in the background");
    advance(secs(100)).await;
    tokio::task::yield_now().await;
    assert_eq!(early(1).await, "1 v2", "the refresh stored");
    assert_eq!(EARLY.get(), 2);
}

static REVALIDATED_BORROWED: Calls = Calls::new();

/// Borrows its argument, so its refresh cannot move to another task.
#[cached(ttl = "10s", stale_while_revalidate = "30s")]
async fn revalidated_borrowed(region: &str) -> String {
    let run = REVALIDATED_BORROWED.run();
    tokio::time::sleep(secs(1)).await;
    format!("{region} v{run}")
}

/// A function that borrows (or a method, or a generic fn) refreshes in the caller that found
/// the entry stale: that caller waits for the new value; everyone else gets the stale one at
/// once; the body runs once.
#[tokio::test(start_paused = true)]
async fn a_borrowing_function_refreshes_in_the_first_stale_caller() {
    assert_eq!(revalidated_borrowed("eu").await, "eu v1");
    advance(secs(10)).await; // t = 11s: stale

    let refresher = tokio::spawn(async { revalidated_borrowed("eu").await });
    tokio::time::sleep(ms(1)).await;
    assert_eq!(
        REVALIDATED_BORROWED.get(),
        2,
        "the first stale caller refreshes"
    );
    for _ in 0..10 {
        let served_at = Instant::now();
        assert_eq!(revalidated_borrowed("eu").await, "eu v1");
        assert_eq!(served_at.elapsed(), Duration::ZERO, "at once");
    }
    assert_eq!(
        refresher.await.unwrap(),
        "eu v2",
        "the refresher waits for the new value"
    );
    assert_eq!(REVALIDATED_BORROWED.get(), 2, "one refresh");
    assert_eq!(
        revalidated_borrowed_cache().counts(),
        counts(0, 1, 11, 2, 0)
    );
}

// ---------------------------------------------------------------------------------------------
// Invalidation through the handle
// ---------------------------------------------------------------------------------------------

static PROFILE: Calls = Calls::new();

#[cached(ttl = "60s")]
async fn profile(id: u32, region: &str) -> String {
    format!("{id}@{region} #{}", PROFILE.run())
}

/// `profile_cache()` reaches the function's cache; its key is the tuple of the owned
/// arguments (`&str` is stored as `String`).
#[tokio::test(start_paused = true)]
async fn the_handle_of_a_free_function_invalidates_one_key_or_all() {
    assert!(
        profile_cache().invalidate(&(1u32, "eu".to_string())),
        "nothing cached yet"
    );
    assert_eq!(profile_cache().counts(), CacheCounts::default());
    assert_eq!(profile(1, "eu").await, "1@eu #1");
    assert_eq!(profile(2, "eu").await, "2@eu #2");
    assert_eq!(profile(1, "eu").await, "1@eu #1");
    assert_eq!(profile(2, "eu").await, "2@eu #2");

    assert!(profile_cache().invalidate(&(1u32, "eu".to_string())));
    assert_eq!(
        profile(1, "eu").await,
        "1@eu #3",
        "invalidated: loaded again"
    );
    assert_eq!(profile(2, "eu").await, "2@eu #2", "the other key is kept");

    // A key of another type is refused, not silently ignored.
    assert!(!profile_cache().invalidate(&(1u64, "eu".to_string())));
    assert!(!profile_cache().invalidate(&(1u32, "eu")));
    assert_eq!(profile(1, "eu").await, "1@eu #3");

    profile_cache().invalidate_all();
    assert_eq!(profile(1, "eu").await, "1@eu #4");
    assert_eq!(profile(2, "eu").await, "2@eu #5");
    assert_eq!(PROFILE.get(), 5);
    assert_eq!(profile_cache().counts(), counts(4, 5, 0, 5, 0));
}

static REPO: Calls = Calls::new();

struct Repo {
    name: &'static str,
}

impl Repo {
    #[cached(ttl = "60s")]
    async fn user(&self, id: u32) -> String {
        format!("{} user {id} #{}", self.name, REPO.run())
    }
}

/// A method's handle is an associated function, `Repo::user_cache()`; `self` is not in the key.
#[tokio::test(start_paused = true)]
async fn the_handle_of_a_method_invalidates_one_key_or_all() {
    let repo = Repo { name: "main" };
    assert_eq!(repo.user(1).await, "main user 1 #1");
    assert_eq!(repo.user(2).await, "main user 2 #2");
    assert!(Repo::user_cache().invalidate(&(1u32,)));
    assert_eq!(repo.user(1).await, "main user 1 #3");
    assert_eq!(repo.user(2).await, "main user 2 #2");
    Repo::user_cache().invalidate_all();
    assert_eq!(repo.user(2).await, "main user 2 #4");
    assert_eq!(REPO.get(), 4);
}

static SHARED: Calls = Calls::new();

struct Client {
    name: &'static str,
}

impl Client {
    #[cached(ttl = "60s")]
    async fn get(&self, path: &str) -> String {
        SHARED.run();
        format!("{} {path}", self.name)
    }
}

/// Documented: `self` is not part of the key, so every instance shares one cache: the second
/// client gets the first client's value.
#[tokio::test(start_paused = true)]
async fn a_method_cache_is_shared_by_every_instance() {
    let first = Client { name: "first" };
    let second = Client { name: "second" };
    assert_eq!(first.get("/a").await, "first /a");
    assert_eq!(second.get("/a").await, "first /a");
    assert_eq!(SHARED.get(), 1);
    assert_eq!(second.get("/b").await, "second /b");
    assert_eq!(SHARED.get(), 2);
}

// ---------------------------------------------------------------------------------------------
// The run-time switch
// ---------------------------------------------------------------------------------------------

static SWITCHED: Calls = Calls::new();

#[cached(ttl = "60s", policy = "cached-switch-test")]
async fn switched(id: u32) -> u32 {
    SWITCHED.run();
    id
}

fn cache_enabled(enabled: bool) -> Policies {
    let mut policies = Policies::new();
    policies.insert(
        "cached-switch-test",
        NamedPolicy::with_cache(CachePatch {
            enabled: Some(enabled),
            ..CachePatch::default()
        }),
    );
    policies
}

/// A policy with `cache.enabled: false` bypasses the cache (every call runs the body) and
/// clears it; enabled again, the cache starts empty and caches again.
#[tokio::test(start_paused = true)]
async fn a_policy_disables_the_cache_at_run_time_and_enables_it_again() {
    // This binary's only test that installs policies: it owns the registry.
    switched(1).await;
    switched(1).await;
    assert_eq!(SWITCHED.get(), 1, "cached");

    registry::install(cache_enabled(false));
    for _ in 0..3 {
        assert_eq!(switched(1).await, 1);
    }
    assert_eq!(SWITCHED.get(), 4, "disabled: every call runs the body");

    registry::install(cache_enabled(true));
    switched(1).await;
    assert_eq!(SWITCHED.get(), 5, "enabled: the cache was cleared");
    switched(1).await;
    switched(1).await;
    assert_eq!(SWITCHED.get(), 5, "and caches again");
    registry::install(Policies::new());
}

// ---------------------------------------------------------------------------------------------
// The bound
// ---------------------------------------------------------------------------------------------

static BOUNDED: Calls = Calls::new();

#[cached(ttl = "60s", max_entries = 100)]
async fn bounded(id: u64) -> u64 {
    BOUNDED.run();
    id * 2
}

/// After 10 000 distinct keys through a cache of `max_entries = 100`, at most 100 entries
/// are stored, and every other entry was counted as evicted.
#[tokio::test(start_paused = true)]
async fn max_entries_is_never_exceeded_after_quiescence() {
    for id in 0..10_000 {
        assert_eq!(bounded(id).await, id * 2);
    }
    let cache = bounded_cache().existing().expect("called");
    let len = cache.len() as u64;
    assert!((1..=100).contains(&len), "{len} entries");
    let counts = bounded_cache().counts();
    assert_eq!(counts.loads, 10_000);
    assert_eq!(
        counts.evictions,
        10_000 - len,
        "every entry not kept was evicted"
    );
    // A hot key survives a scan of cold ones (S3-FIFO).
    for id in 10_000..10_500 {
        bounded(0).await;
        bounded(id).await;
    }
    assert!(cache.len() <= 100, "{} entries", cache.len());
    let loads_before = BOUNDED.get();
    bounded(0).await;
    assert_eq!(BOUNDED.get(), loads_before, "the hot key stayed");
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

static GREETED: Calls = Calls::new();

#[cached(ttl = "60s", key = name.to_lowercase())]
async fn greet(name: &str) -> String {
    GREETED.run();
    format!("hello {name}")
}

/// `key = name.to_lowercase()`: names differing only in case share one entry, and the
/// handle takes the key expression's type (`String`).
#[tokio::test(start_paused = true)]
async fn a_custom_key_expression_makes_lookups_case_insensitive() {
    assert_eq!(greet("Ada").await, "hello Ada");
    assert_eq!(greet("ADA").await, "hello Ada");
    assert_eq!(greet("ada").await, "hello Ada");
    assert_eq!(GREETED.get(), 1);
    assert_eq!(greet("Grace").await, "hello Grace");
    assert_eq!(GREETED.get(), 2);
    assert!(
        !greet_cache().invalidate(&("ada".to_string(),)),
        "not the key type"
    );
    assert!(greet_cache().invalidate(&"ada".to_string()));
    assert_eq!(greet("ADA").await, "hello ADA");
    assert_eq!(GREETED.get(), 3);
}

// ---------------------------------------------------------------------------------------------
// Blocking functions
// ---------------------------------------------------------------------------------------------

static SQUARED: Calls = Calls::new();

#[cached(ttl = "60s")]
fn square(x: u64) -> u64 {
    SQUARED.run();
    x * x
}

/// A plain `fn` is cached the same way, on the same clock.
#[tokio::test(start_paused = true)]
async fn a_blocking_function_is_cached_until_ttl() {
    assert_eq!(square(3), 9);
    assert_eq!(square(3), 9);
    assert_eq!(square(4), 16);
    assert_eq!(SQUARED.get(), 2);
    advance(secs(60) - NS).await;
    assert_eq!(square(3), 9);
    assert_eq!(SQUARED.get(), 2);
    advance(NS).await;
    assert_eq!(square(3), 9);
    assert_eq!(SQUARED.get(), 3);
    assert_eq!(square_cache().counts(), counts(2, 3, 0, 3, 0));
}

static SLOW_SQUARED: Calls = Calls::new();

#[cached(ttl = "60s")]
fn slow_square(x: u64) -> u64 {
    SLOW_SQUARED.run();
    std::thread::sleep(ms(50));
    x * x
}

/// Eight threads missing one key of a blocking function together: one load.
#[test]
fn blocking_callers_on_threads_share_one_load() {
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| assert_eq!(slow_square(5), 25));
        }
    });
    assert_eq!(SLOW_SQUARED.get(), 1);
    assert_eq!(slow_square_cache().counts().loads, 1);
}

// ---------------------------------------------------------------------------------------------
// Stacked attributes
// ---------------------------------------------------------------------------------------------

static FLAKY: Calls = Calls::new();

/// The first try fails with a 503, the second succeeds.
#[cached(ttl = "60s")]
#[retry(attempts = 3, backoff = "constant", base = "100ms", on = [503])]
async fn flaky(id: u32) -> Result<String, ApiError> {
    let run = FLAKY.run();
    if run == 1 {
        Err(ApiError::Http(HttpError::new(503)))
    } else {
        Ok(format!("{id} #{run}"))
    }
}

/// `#[cached]` outside `#[retry]`: one load is the whole retry loop, so a failed-then-ok
/// load caches the `Ok`, and later calls neither run the body nor sleep.
#[tokio::test(start_paused = true)]
async fn cached_over_retry_caches_the_ok_of_a_retried_load() {
    let start = Instant::now();
    assert_eq!(flaky(1).await, Ok("1 #2".to_string()));
    assert_eq!(start.elapsed(), ms(100), "one retry after 100ms");
    assert_eq!(FLAKY.get(), 2);
    assert_eq!(flaky(1).await, Ok("1 #2".to_string()));
    assert_eq!(start.elapsed(), ms(100));
    assert_eq!(FLAKY.get(), 2);
    assert_eq!(flaky_cache().counts(), counts(1, 1, 0, 1, 0));
}

static LIMITED: Calls = Calls::new();

#[cached(ttl = "60s")]
#[rate_limited(calls = 1, period = "1s")]
async fn limited(id: u32) -> Result<u32, ApiError> {
    LIMITED.run();
    Ok(id)
}

/// `#[cached]` outside `#[rate_limited]`: a hit takes no permit. With one call per second,
/// key 1 is admitted at 0s, its hits return at 0s, and key 2 is admitted at 1s (it would be
/// 2s if a hit had taken a permit).
#[tokio::test(start_paused = true)]
async fn cached_over_rate_limited_hits_take_no_permit() {
    let start = Instant::now();
    assert_eq!(limited(1).await, Ok(1));
    assert_eq!(start.elapsed(), Duration::ZERO);
    for _ in 0..5 {
        assert_eq!(limited(1).await, Ok(1));
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "hits do not wait");
    assert_eq!(limited(2).await, Ok(2));
    assert_eq!(
        start.elapsed(),
        secs(1),
        "the next permit was not taken by a hit"
    );
    assert_eq!(limited(3).await, Ok(3));
    assert_eq!(start.elapsed(), secs(2));
    assert_eq!(LIMITED.get(), 3);
    assert_eq!(limited_cache().counts(), counts(5, 3, 0, 3, 0));
}

static RACED: Calls = Calls::new();

#[cached(ttl = "60s")]
async fn raced(id: u32) -> u32 {
    RACED.run();
    tokio::task::yield_now().await;
    id
}

/// On a multi-thread runtime, a caller that misses just as another caller's load finishes
/// takes the stored value instead of loading again: 8 callers per key, 500 keys, 500 loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_miss_racing_a_finishing_load_does_not_load_again() {
    for id in 0..500 {
        let tasks: Vec<_> = (0..8).map(|_| tokio::spawn(raced(id))).collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), id);
        }
    }
    assert_eq!(RACED.get(), 500);
    assert_eq!(raced_cache().counts().loads, 500);
}
