//! [`client_builder`]: a `reqwest::ClientBuilder` with a policy's connect and read timeouts.

use crate::registry;

/// A `reqwest::ClientBuilder` with the connect and read timeouts of the policy called `name`
/// (`timeout: { connect: 3s, read: 10s }`), read now: a later reload does not change a client
/// already built. A phase the policy does not set keeps reqwest's default (none); a policy
/// that is not loaded gives a plain builder.
///
/// `read` is set as reqwest's `read_timeout`: the bound on each read from the connection,
/// reset after every read, so a slow but steady body is not cut. The
/// [`ResilienceMiddleware`](crate::http::ResilienceMiddleware) also bounds each try's wait
/// for the answer's head by `read`, and the whole call by `total`.
///
/// ```no_run
/// # use resilience_core as resilience;
/// # fn demo() -> Result<(), reqwest::Error> {
/// let client = resilience::http::client_builder("user-api").build()?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
pub fn client_builder(name: &str) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder();
    let Some(timeouts) = registry::http_timeouts(name) else {
        return builder;
    };
    if let Some(connect) = timeouts.connect {
        builder = builder.connect_timeout(connect);
    }
    if let Some(read) = timeouts.read {
        builder = builder.read_timeout(read);
    }
    builder
}
