//! Policy as data for [`resilience`](https://docs.rs/resilience): the spec and patch types
//! of every policy section, the value rules and the duration syntax every front end shares,
//! one key table per section, the schema of a policy file, and (feature `yaml`, on by
//! default) YAML loading with `file:line:column` errors and "did you mean" hints.
//!
//! - [`retry`], [`rate_limit`], [`cache`], [`breaker`] and [`bulkhead`] hold each section's
//!   spec (what an attribute builds, in a `static`) and patch (what a named policy overrides).
//!   The runtime uses them as they are (`resilience_core::rate_limit::RateLimitSpec` is
//!   [`rate_limit::RateLimitSpec`]), and the YAML reader fills the patches directly.
//! - Each section's keys are one table (private `keys.rs`): the keys each attribute accepts
//!   ([`rules::RETRY_KEYS`], ...), the keys YAML accepts and the YAML reader of each key all
//!   come from it.
//! - [`rules`] and [`duration`] are the checks of every policy value, written once. The macro
//!   crate uses them at compile time (with `default-features = false`, so it builds with no
//!   dependency at all), the YAML reader at load time and the runtime on a spec built in code,
//!   so a value `#[retry]` refuses at compile time is refused at load time with the same words.
//! - [`PolicyFile`] and [`NamedPolicy`] are a policy file as plain data.
//! - With `yaml`: [`load`], [`load_str`] and [`read_file`] + [`load_text`] read and check;
//!   they do not apply. `resilience::config::{load, load_str, watch}` (in `resilience-core`,
//!   re-exported by the facade) call them, install what they return as the named policies,
//!   and watch the file: the runtime installs and watches what this crate reads. The runtime depends
//!   on this crate, rather than the other way round, so that `RESILIENCE_CONFIG=path` can load
//!   a file from inside the runtime on the first use of a named policy.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod class;
mod declare;
pub mod duration;
pub mod hedge;
mod invalid;
mod keys;
pub mod rate_limit;
pub mod retry;
pub mod retry_budget;
pub mod rules;
mod scalar;
mod schema;
pub mod size;
pub mod timeout;

#[cfg(feature = "yaml")]
mod error;
#[cfg(feature = "yaml")]
mod limits;
#[cfg(feature = "yaml")]
mod load;
#[cfg(feature = "yaml")]
mod serialize;
#[cfg(feature = "yaml")]
mod validate;

pub use backend::{BackendName, OnBackendError};
#[cfg(feature = "yaml")]
pub use error::{ConfigError, ConfigErrors};
pub use invalid::InvalidValue;
#[cfg(feature = "yaml")]
pub use limits::{MAX_DOCUMENT_BYTES, MAX_FLOW_DEPTH, MAX_VALUES};
#[cfg(feature = "yaml")]
pub use load::{file_error, load, load_str, load_text, read_file};
pub use schema::{AlertDoc, NamedPolicy, ON_BACKEND_ERROR_NAMES, PolicyFile};
#[cfg(feature = "yaml")]
pub use validate::deserialize_policies;
