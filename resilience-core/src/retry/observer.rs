//! Who watches the retries of the calls running in one task: a batch counts each input's
//! tries for its dead letters. The retry loop reports each retry here and does not know who
//! listens; a retry outside any watched scope is not counted.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    /// Retries made inside the [`counting_retries`] scope running in this task.
    static RETRIES: Cell<u32>;
}

/// Told by the retry loop before each retry.
pub(crate) fn retrying() {
    let _ = RETRIES.try_with(|retries| retries.set(retries.get().saturating_add(1)));
}

/// Runs `future`, counting the retries the retry loops inside it make.
pub(crate) async fn counting_retries<F: Future>(future: F) -> (F::Output, u32) {
    let counted = async move {
        let output = future.await;
        (output, RETRIES.get().get())
    };
    RETRIES.scope(Cell::new(0), counted).await
}
