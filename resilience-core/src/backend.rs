//! Where a policy's stateful sections keep their state: in this process (the default), or in
//! Redis (feature `redis`), shared by every instance.
//!
//! ```yaml
//! policies:
//!   github:
//!     rate_limit: { calls: 5000, period: 1h }
//!     backend: redis://127.0.0.1:6379/0
//!     backend_timeout: 50ms          # bound on every round trip (default 50ms)
//!     on_backend_error: allow        # allow | deny | local (default allow)
//!     key_prefix: "myservice:"       # default "resilience:"
//! ```
//!
//! A call never hangs on the backend: each round trip is bounded by `backend_timeout`, after
//! which `on_backend_error` decides: `allow` lets the call through, `deny` refuses it
//! (`Rejected::RateLimited`), `local` uses this process's in-memory state instead. After
//! three failures in a row the backend is skipped for a second (so an outage does not add
//! the timeout to every call), then tried again by itself. Every fallback is counted
//! (`resilience_backend_errors_total{policy, fallback}`) and logged.

// Plain data, shared with YAML.
pub use resilience_config::backend::{BackendSpec, OnBackendError};
