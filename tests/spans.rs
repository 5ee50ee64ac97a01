//! Each call that fails once runs the rest of its tries in one `tracing` span,
//! `resilience.call` with the site and policy, so a trace shows a call and its retries
//! together: checked with a subscriber that records, for every event, the spans it was in.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use resilience::{HttpError, retry};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the recorder saw it made: its name and fields.
#[derive(Debug, Clone, PartialEq)]
struct SpanSeen {
    name: &'static str,
    fields: Vec<(String, String)>,
}

/// One event: its target, its message, and the spans it was in (outermost first, each
/// with its id, so two events can be told to share one span).
#[derive(Debug, Clone)]
struct EventSeen {
    target: String,
    message: String,
    scope: Vec<(u64, SpanSeen)>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<EventSeen>>>);

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl<S> tracing_subscriber::Layer<S> for Recorder
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(SpanSeen {
                name: attributes.metadata().name(),
                fields: fields.0,
            });
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, context: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields
            .0
            .iter()
            .find(|(name, _)| name == "message")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        let scope = context
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| {
                        let seen = span.extensions().get::<SpanSeen>().cloned()?;
                        Some((span.id().into_u64(), seen))
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(EventSeen {
                target: event.metadata().target().to_string(),
                message,
                scope,
            });
    }
}

impl Recorder {
    fn events(&self) -> Vec<EventSeen> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

fn recording() -> (Recorder, tracing::subscriber::DefaultGuard) {
    let recorder = Recorder::default();
    let guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    (recorder, guard)
}

/// The one `resilience.call` span around `event`, if it is in one.
fn call_span(event: &EventSeen) -> Option<&(u64, SpanSeen)> {
    let mut calls = event
        .scope
        .iter()
        .filter(|(_, span)| span.name == "resilience.call");
    let call = calls.next();
    assert!(calls.next().is_none(), "nested call spans: {event:?}");
    call
}

static FLAKY: AtomicU32 = AtomicU32::new(0);

/// 503 twice, then 200; logs an event of its own on every try.
#[retry(attempts = 3, base = "10ms", policy = "spans-policy")]
async fn flaky() -> Result<u32, HttpError> {
    let n = FLAKY.fetch_add(1, Ordering::Relaxed);
    tracing::info!(target: "app", "try {n}");
    if n < 2 {
        Err(HttpError::new(503))
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn a_retried_call_and_its_tries_share_one_span_with_site_and_policy() {
    let (recorder, _guard) = recording();
    assert_eq!(flaky().await, Ok(2));

    let events = recorder.events();
    let retries: Vec<&EventSeen> = events
        .iter()
        .filter(|event| event.target == "resilience::retry")
        .collect();
    assert_eq!(retries.len(), 2, "{events:#?}");
    let (id, span) = call_span(retries[0]).expect("the first retry event is in a call span");
    assert_eq!(
        span.fields,
        [
            ("site".to_string(), "spans::flaky".to_string()),
            ("policy".to_string(), "spans-policy".to_string()),
        ]
    );
    assert_eq!(
        call_span(retries[1]).map(|(other, _)| other),
        Some(id),
        "both retries in the same span"
    );
    // The function's own events: the first try ran before anything failed, so outside the
    // span; the two retried tries inside it.
    let tries: Vec<Option<u64>> = events
        .iter()
        .filter(|event| event.target == "app")
        .map(|event| call_span(event).map(|(id, _)| *id))
        .collect();
    assert_eq!(tries, [None, Some(*id), Some(*id)], "{events:#?}");
    assert!(
        retries[0].message.starts_with("try 1 failed"),
        "{retries:?}"
    );
}

#[retry]
async fn fine() -> Result<u32, HttpError> {
    tracing::info!(target: "app", "fine");
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_call_that_succeeds_at_once_makes_no_span() {
    let (recorder, _guard) = recording();
    assert_eq!(fine().await, Ok(1));
    let events = recorder.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].scope.is_empty(), "{events:#?}");
}

static BLOCKING: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 2, base = "1ms")]
fn blocking() -> Result<u32, HttpError> {
    match BLOCKING.fetch_add(1, Ordering::Relaxed) {
        0 => Err(HttpError::new(503)),
        n => Ok(n),
    }
}

#[test]
fn a_blocking_call_retries_in_its_span_too() {
    let (recorder, _guard) = recording();
    assert_eq!(blocking(), Ok(1));
    let events = recorder.events();
    let retry = events
        .iter()
        .find(|event| event.target == "resilience::retry")
        .expect("a retry event");
    let (_, span) = call_span(retry).expect("in a call span");
    assert_eq!(
        span.fields,
        [("site".to_string(), "spans::blocking".to_string())]
    );
}
