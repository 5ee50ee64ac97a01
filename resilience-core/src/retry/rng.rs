//! Where the retry loop draws its jitter: the thread's generator, or, inside a simulated
//! caller of [`crate::sim`], that caller's seeded one, so a simulation with a seed plays the
//! same sleeps every time.

use rand::RngCore;

#[cfg(feature = "sim")]
tokio::task_local! {
    /// The generator of the simulated caller running in this task.
    static SEEDED: std::cell::RefCell<rand::rngs::StdRng>;
}

/// Calls `draw` with this task's seeded generator if it runs inside [`seeded`], else with the
/// thread's.
pub(crate) fn with<T>(draw: impl FnOnce(&mut dyn RngCore) -> T) -> T {
    #[cfg(feature = "sim")]
    if let Ok(seeded) = SEEDED.try_with(|rng| rng.clone()) {
        // Drawn from a copy, stored back: no borrow of the task-local is held by `draw`.
        let mut rng = seeded.into_inner();
        let drawn = draw(&mut rng);
        let _ = SEEDED.try_with(|cell| cell.replace(rng));
        return drawn;
    }
    draw(&mut rand::rng())
}

/// Runs `future` with the retries inside it jittered by a generator seeded with `seed`.
#[cfg(feature = "sim")]
pub(crate) async fn seeded<F: std::future::Future>(seed: u64, future: F) -> F::Output {
    use rand::SeedableRng;
    let rng = rand::rngs::StdRng::seed_from_u64(seed);
    SEEDED.scope(std::cell::RefCell::new(rng), future).await
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;

    fn draws() -> [u64; 3] {
        [(); 3].map(|()| with(|rng| rng.next_u64()))
    }

    #[tokio::test]
    async fn a_seed_gives_the_same_draws_and_the_thread_others() {
        let first = seeded(7, async { draws() }).await;
        assert_eq!(seeded(7, async { draws() }).await, first);
        assert_ne!(seeded(8, async { draws() }).await, first);
        assert_ne!(draws(), first);
    }
}
