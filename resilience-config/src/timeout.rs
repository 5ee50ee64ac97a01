//! A policy's `timeout` written as a mapping: one limit per phase of an HTTP call
//! (`timeout: { connect: 3s, read: 10s, total: 30s }`). The plain form, `timeout: 3s`, is one
//! limit on each try and stays a `Duration`.

use std::time::Duration;

/// The phases of `timeout: { connect, read, total }`; each absent phase is unbounded.
///
/// `connect` is how long a client may take to open a connection (set on the client:
/// `resilience::http::client_builder`), `read` how long each try may wait for the answer's
/// head once sent, and `total` how long the whole call may take, every try and wait included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpTimeouts {
    /// `connect`: the bound on opening a connection.
    pub connect: Option<Duration>,
    /// `read`: the bound on each try's wait for the answer's head.
    pub read: Option<Duration>,
    /// `total`: the bound on the whole call.
    pub total: Option<Duration>,
}

impl HttpTimeouts {
    /// No bound on any phase.
    pub const NONE: HttpTimeouts = HttpTimeouts {
        connect: None,
        read: None,
        total: None,
    };

    /// Sets `connect`.
    pub const fn connect(mut self, connect: Duration) -> Self {
        self.connect = Some(connect);
        self
    }

    /// Sets `read`.
    pub const fn read(mut self, read: Duration) -> Self {
        self.read = Some(read);
        self
    }

    /// Sets `total`.
    pub const fn total(mut self, total: Duration) -> Self {
        self.total = Some(total);
        self
    }
}
