//! [`RetryOn`]: the set of error classes a retry policy retries.

use crate::class::ErrorClass;

const WORDS: usize = 10; // 640 bits cover every status code 0..=599

/// Which errors to retry: `Timeout`, `Connect`, `Body`, and any set of HTTP status codes.
///
/// Built with `const fn`s so a macro can put it in a `static`. The default is
/// [`RetryOn::TRANSIENT`]: Timeout, Connect, 429, 502, 503, 504. `Body` (an answer whose body
/// failed midway) is only retried when [`body`](RetryOn::body) adds it. An error classified
/// `Other` is never in the set; use a `retry_if` predicate for those.
///
/// ```
/// # mod resilience { pub use resilience_config::{class::ErrorClass, retry}; }
/// use resilience::ErrorClass;
/// use resilience::retry::RetryOn;
///
/// let on = RetryOn::NONE.timeout().status(503).class(4);
/// assert!(on.matches(ErrorClass::Timeout));
/// assert!(on.matches(ErrorClass::Status(503)));
/// assert!(on.matches(ErrorClass::Status(404)));
/// assert!(!on.matches(ErrorClass::Status(502)));
/// assert!(!on.matches(ErrorClass::Connect));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryOn {
    timeout: bool,
    connect: bool,
    body: bool,
    statuses: [u64; WORDS],
}

impl RetryOn {
    /// Retries nothing.
    pub const NONE: RetryOn = RetryOn {
        timeout: false,
        connect: false,
        body: false,
        statuses: [0; WORDS],
    };

    /// Timeout, Connect, 429, 502, 503 and 504: the contract's `Transient`.
    pub const TRANSIENT: RetryOn = RetryOn::NONE.transient();

    /// Adds `Timeout`.
    pub const fn timeout(mut self) -> Self {
        self.timeout = true;
        self
    }

    /// Adds `Connect`.
    pub const fn connect(mut self) -> Self {
        self.connect = true;
        self
    }

    /// Adds `Body`: an answer that had begun and whose body failed (a cut stream). Opt-in only:
    /// the server saw the request, and a stream's reader has seen part of the answer.
    pub const fn body(mut self) -> Self {
        self.body = true;
        self
    }

    /// Adds one status code. Codes outside 100..=599 are ignored.
    pub const fn status(mut self, code: u16) -> Self {
        if code >= 100 && code <= 599 {
            self.statuses[(code / 64) as usize] |= 1 << (code % 64);
        }
        self
    }

    /// Adds a class of status codes by its hundreds digit: `class(5)` is `"5xx"`.
    pub const fn class(mut self, hundreds: u16) -> Self {
        let mut code = hundreds * 100;
        while code < hundreds * 100 + 100 {
            self = self.status(code);
            code += 1;
        }
        self
    }

    /// Adds the `Transient` set: Timeout, Connect, 429, 502, 503, 504.
    pub const fn transient(self) -> Self {
        self.timeout()
            .connect()
            .status(429)
            .status(502)
            .status(503)
            .status(504)
    }

    /// The errors of both sets.
    pub const fn with(mut self, other: RetryOn) -> Self {
        self.timeout |= other.timeout;
        self.connect |= other.connect;
        self.body |= other.body;
        let mut word = 0;
        while word < WORDS {
            self.statuses[word] |= other.statuses[word];
            word += 1;
        }
        self
    }

    /// Whether an error of this class is retried.
    #[inline]
    pub const fn matches(&self, class: ErrorClass) -> bool {
        match class {
            ErrorClass::Timeout => self.timeout,
            ErrorClass::Connect => self.connect,
            ErrorClass::Body => self.body,
            ErrorClass::Status(code) => {
                code <= 599 && self.statuses[(code / 64) as usize] & (1 << (code % 64)) != 0
            }
            ErrorClass::Other => false,
        }
    }

    /// The status codes in the set, ascending.
    pub fn statuses(&self) -> impl Iterator<Item = u16> + '_ {
        (100..=599).filter(|code| self.matches(ErrorClass::Status(*code)))
    }
}

impl Default for RetryOn {
    fn default() -> Self {
        RetryOn::TRANSIENT
    }
}

impl std::fmt::Debug for RetryOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        if self.timeout {
            list.entry(&format_args!("Timeout"));
        }
        if self.connect {
            list.entry(&format_args!("Connect"));
        }
        if self.body {
            list.entry(&format_args!("Body"));
        }
        for code in self.statuses() {
            list.entry(&code);
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_is_the_contract_set() {
        let on = RetryOn::TRANSIENT;
        assert!(on.matches(ErrorClass::Timeout));
        assert!(on.matches(ErrorClass::Connect));
        assert!(!on.matches(ErrorClass::Body), "a cut body is opt-in");
        assert_eq!(on.statuses().collect::<Vec<_>>(), vec![429, 502, 503, 504]);
        for never in [400, 401, 403, 404, 422, 500] {
            assert!(!on.matches(ErrorClass::Status(never)), "{never}");
        }
        assert!(!on.matches(ErrorClass::Other));
        assert!(!on.matches(ErrorClass::Status(u16::MAX)));
    }

    #[test]
    fn classes_and_bounds() {
        let on = RetryOn::NONE.class(5);
        assert_eq!(on.statuses().count(), 100);
        assert!(on.matches(ErrorClass::Status(599)));
        assert!(!on.matches(ErrorClass::Status(600)));
        assert_eq!(RetryOn::NONE.status(99).status(600), RetryOn::NONE);
        assert_eq!(
            format!("{:?}", RetryOn::NONE.timeout().status(503)),
            "[Timeout, 503]"
        );
        let body = RetryOn::TRANSIENT.body();
        assert!(body.matches(ErrorClass::Body));
        assert_eq!(
            format!("{body:?}"),
            "[Timeout, Connect, Body, 429, 502, 503, 504]"
        );
    }

    #[test]
    fn with_is_the_union() {
        let on = RetryOn::NONE
            .timeout()
            .status(503)
            .with(RetryOn::NONE.class(4));
        assert_eq!(on, RetryOn::NONE.class(4).status(503).timeout());
        assert!(!on.matches(ErrorClass::Connect));
        assert!(
            RetryOn::NONE
                .with(RetryOn::NONE.body())
                .matches(ErrorClass::Body)
        );
    }
}
