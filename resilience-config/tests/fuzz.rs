//! Malformed policy files never panic the validator: 10,000 mutations of valid files (random
//! character insertions and deletions, YAML tokens dropped in, swapped keys, random scalars in
//! value positions, random indentation, tabs, truncation) each give `Ok`, or errors that all
//! have a message and a place.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use resilience_config::load_str;

/// Block style, every section and most keys.
const BLOCK: &str = "\
policies:
  user-api:
    retry:
      attempts: 5
      backoff: exp
      base: 200ms
      factor: 2.5
      max_delay: 10s
      max_elapsed: ~
      jitter: 0.2
      on:
        - Timeout
        - 503
        - 5xx
      retry_after: true
    rate_limit:
      calls: 50
      period: 1s
      burst: 3
      mode: wait
      max_wait: 5s
    cache:
      enabled: true
      ttl: 60s
      ttl_jitter: 0.1
      max_entries: 10000
      negative_ttl: 5s
      stale_while_revalidate: 30s
    circuit_breaker:
      failure_rate: 0.5
      min_calls: 10
      window: 20
      open_for: 30s
      half_open_calls: 2
    timeout: 3s
    bulkhead:
      max_concurrent: 20
      max_wait: 1s
    alert:
      retry_rate: 0.2
      window: 5m
  search:
    retry: { attempts: 2, jitter: full }
";

/// The contract's example: flow style, with a comment.
const FLOW: &str = "\
policies:
  user-api:
    retry: { attempts: 5, backoff: exp, base: 200ms, max_delay: 10s, jitter: 0.2, on: [Timeout, Connect, 429, 502, 503, 504] }
    rate_limit: { calls: 50, period: 1s, mode: wait, max_wait: 5s }
    cache: { enabled: true, ttl: 60s, ttl_jitter: 0.1, max_entries: 10000, negative_ttl: 5s }
    circuit_breaker: { failure_rate: 0.5, min_calls: 10, window: 20, open_for: 30s }
    timeout: 3s
    bulkhead: { max_concurrent: 20 }
    alert: { retry_rate: 0.2, window: 5m }   # warn when more than 20% of calls retry over 5 minutes
";

/// Pieces of YAML syntax, and values that sit at the edges of the rules.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!tag ",
    "? ",
    "|",
    ">",
    "'",
    "\"",
    "%",
    "@",
    "`",
    "~",
    "<<: ",
    "\n",
    "\n  ",
    "  ",
    "\t",
    "\r\n",
    "---",
    "...",
    "\n---\n",
    "\\",
    "\u{feff}",
    "\0",
    "0",
    "-1",
    "1.5",
    ".nan",
    ".inf",
    "1e400",
    "99999999999999999999999",
    "-99999999999999999999999",
    "4294967296",
    "0x1F",
    "10x",
    "5",
    "attemps",
    "retri",
    "retry_if",
    "policies",
    "on:",
    "ms",
    "é",
    "日本",
];

/// Section and key names, for swaps that stay plausible.
const NAMES: &[&str] = &[
    "policies",
    "retry",
    "rate_limit",
    "cache",
    "circuit_breaker",
    "timeout",
    "bulkhead",
    "alert",
    "attempts",
    "backoff",
    "base",
    "factor",
    "max_delay",
    "max_elapsed",
    "jitter",
    "on",
    "retry_after",
    "calls",
    "period",
    "burst",
    "mode",
    "max_wait",
    "enabled",
    "ttl",
    "max_entries",
    "ttl_jitter",
    "negative_ttl",
    "stale_while_revalidate",
    "failure_rate",
    "min_calls",
    "window",
    "open_for",
    "half_open_calls",
    "max_concurrent",
    "retry_rate",
];

/// A position, as a fraction of whatever it indexes: `pick(pos, len)` is in `0..len`.
type Pos = u16;

fn pick(pos: Pos, len: usize) -> usize {
    (usize::from(pos) * len) >> 16
}

#[derive(Debug, Clone)]
enum Mutation {
    InsertChar(Pos, char),
    InsertToken(Pos, &'static str),
    Delete(Pos, usize),
    SwapKeys(Pos, Pos),
    RenameKey(Pos, &'static str),
    ReplaceValue(Pos, String),
    Reindent(Pos, usize),
    Tab(Pos, Pos),
    DuplicateLine(Pos, Pos),
    Truncate(Pos),
}

/// Random scalars (and a few non-scalars) for value positions.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        (0u32..700).prop_map(|n| n.to_string()),
        "[0-9]{1,30}(ns|us|ms|s|m|h|x|sec|)",
        "-?[0-9]{0,4}\\.?[0-9]{0,4}(ms|s)?",
        "[ -~]{0,16}",
        "\\PC{0,8}",
        Just("~".to_string()),
        Just("".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("[1, 2]".to_string()),
        Just("{ a: 1 }".to_string()),
        Just("[Timeout, 700, 9xx]".to_string()),
        Just("\"\"".to_string()),
        Just("'quoted'".to_string()),
        Just("*a".to_string()),
        Just("&a 5".to_string()),
        Just("!!binary aGVsbG8=".to_string()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Pos>(), any::<char>()).prop_map(|(at, c)| Mutation::InsertChar(at, c)),
        2 => (any::<Pos>(), "[ -~\n\t]")
            .prop_map(|(at, s)| Mutation::InsertChar(at, s.chars().next().unwrap_or(' '))),
        3 => (any::<Pos>(), proptest::sample::select(TOKENS))
            .prop_map(|(at, t)| Mutation::InsertToken(at, t)),
        3 => (any::<Pos>(), 1usize..12).prop_map(|(at, n)| Mutation::Delete(at, n)),
        2 => (any::<Pos>(), any::<Pos>()).prop_map(|(a, b)| Mutation::SwapKeys(a, b)),
        2 => (any::<Pos>(), proptest::sample::select(NAMES))
            .prop_map(|(at, name)| Mutation::RenameKey(at, name)),
        4 => (any::<Pos>(), scalar()).prop_map(|(at, s)| Mutation::ReplaceValue(at, s)),
        2 => (any::<Pos>(), 0usize..12).prop_map(|(line, n)| Mutation::Reindent(line, n)),
        2 => (any::<Pos>(), any::<Pos>()).prop_map(|(line, at)| Mutation::Tab(line, at)),
        1 => (any::<Pos>(), any::<Pos>()).prop_map(|(from, to)| Mutation::DuplicateLine(from, to)),
        1 => any::<Pos>().prop_map(Mutation::Truncate),
    ]
}

/// A valid file, then 1 to 5 mutations.
fn malformed() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(BLOCK), Just(FLOW)],
        proptest::collection::vec(mutation(), 1..=5),
    )
        .prop_map(|(base, mutations)| {
            let mut text = base.to_string();
            for mutation in &mutations {
                text = apply(&text, mutation);
            }
            text
        })
}

/// Byte offset of the `index`-th char boundary of `text` (the end included).
fn boundary(text: &str, at: Pos) -> usize {
    let count = text.chars().count();
    let n = pick(at, count + 1);
    text.char_indices().nth(n).map_or(text.len(), |(i, _)| i)
}

/// The byte spans of every mapping key (a name directly followed by `:`).
fn key_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if word(bytes[i]) && (i == 0 || !word(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            if bytes.get(i) == Some(&b':') {
                spans.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    spans
}

/// The byte spans of every value written after `key: ` (to the end of the line, a `,` or `}`).
fn value_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for (_, key_end) in key_spans(text) {
        let start = key_end + 1;
        if !text[start..].starts_with(' ') {
            continue;
        }
        let start = start + 1;
        let end = text[start..]
            .find([',', '}', '\n', '#'])
            .map_or(text.len(), |n| start + n);
        spans.push((start, end));
    }
    spans
}

/// The byte spans of every line, without its newline.
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for line in text.split('\n') {
        spans.push((start, start + line.len()));
        start += line.len() + 1;
    }
    spans
}

fn splice(text: &str, (start, end): (usize, usize), with: &str) -> String {
    format!("{}{with}{}", &text[..start], &text[end..])
}

fn apply(text: &str, mutation: &Mutation) -> String {
    match mutation {
        Mutation::InsertChar(at, c) => {
            let at = boundary(text, *at);
            splice(text, (at, at), c.encode_utf8(&mut [0; 4]))
        }
        Mutation::InsertToken(at, token) => {
            let at = boundary(text, *at);
            splice(text, (at, at), token)
        }
        Mutation::Delete(at, n) => {
            let start = boundary(text, *at);
            let end = text[start..]
                .char_indices()
                .nth(*n)
                .map_or(text.len(), |(i, _)| start + i);
            splice(text, (start, end), "")
        }
        Mutation::SwapKeys(a, b) => {
            let spans = key_spans(text);
            if spans.len() < 2 {
                return text.to_string();
            }
            let (i, j) = (pick(*a, spans.len()), pick(*b, spans.len()));
            let (first, second) = (spans[i.min(j)], spans[i.max(j)]);
            if first == second {
                return text.to_string();
            }
            let (a_name, b_name) = (&text[first.0..first.1], &text[second.0..second.1]);
            format!(
                "{}{b_name}{}{a_name}{}",
                &text[..first.0],
                &text[first.1..second.0],
                &text[second.1..]
            )
        }
        Mutation::RenameKey(at, name) => {
            let spans = key_spans(text);
            if spans.is_empty() {
                return text.to_string();
            }
            splice(text, spans[pick(*at, spans.len())], name)
        }
        Mutation::ReplaceValue(at, scalar) => {
            let spans = value_spans(text);
            if spans.is_empty() {
                return text.to_string();
            }
            splice(text, spans[pick(*at, spans.len())], scalar)
        }
        Mutation::Reindent(line, n) => {
            let spans = line_spans(text);
            let (start, end) = spans[pick(*line, spans.len())];
            let content = text[start..end].trim_start_matches(' ');
            splice(text, (start, end), &format!("{}{content}", " ".repeat(*n)))
        }
        Mutation::Tab(line, at) => {
            let spans = line_spans(text);
            let (start, end) = spans[pick(*line, spans.len())];
            let indent = text[start..end].len() - text[start..end].trim_start().len();
            let at = start + pick(*at, indent + 1);
            splice(text, (at, at), "\t")
        }
        Mutation::DuplicateLine(from, to) => {
            let spans = line_spans(text);
            let (start, end) = spans[pick(*from, spans.len())];
            let line = format!("{}\n", &text[start..end]);
            let (to, _) = spans[pick(*to, spans.len())];
            splice(text, (to, to), &line)
        }
        Mutation::Truncate(at) => {
            let at = boundary(text, *at);
            text[..at].to_string()
        }
    }
}

/// `Ok`, or at most 20 errors in file order, each with a message, a line and a column.
fn check(text: &str) -> Result<(), TestCaseError> {
    let Err(errors) = load_str(text) else {
        return Ok(());
    };
    prop_assert!(!errors.is_empty(), "an Err with no error for {text:?}");
    prop_assert!(errors.len() <= 20, "{} errors for {text:?}", errors.len());
    let mut previous = (0, 0);
    for error in errors.errors() {
        let shown = error.to_string();
        prop_assert!(
            !error.message.trim().is_empty(),
            "an empty message for {text:?}: {shown}"
        );
        prop_assert!(error.file.is_none(), "{shown}");
        prop_assert!(
            error.line > 0 && error.column > 0,
            "no place for {text:?}: {shown}"
        );
        prop_assert!(
            (error.line, error.column) >= previous,
            "out of order for {text:?}:\n{errors}"
        );
        previous = (error.line, error.column);
        prop_assert!(shown.starts_with("<yaml>:"), "{shown}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn malformed_documents_never_panic_and_every_error_is_placed(text in malformed()) {
        check(&text)?;
    }
}

#[test]
fn the_unmutated_files_are_valid() {
    for base in [BLOCK, FLOW] {
        let file = load_str(base).unwrap_or_else(|errors| panic!("{errors}"));
        assert!(file.policies.contains_key("user-api"));
    }
}

#[test]
fn the_mutations_do_what_they_say() {
    let text = "policies:\n  a:\n    retry: { attempts: 5, base: 1s }\n";
    let first: Pos = 0;
    let last = Pos::MAX;
    assert_eq!(
        key_spans(text)
            .iter()
            .map(|&(s, e)| &text[s..e])
            .collect::<Vec<_>>(),
        ["policies", "a", "retry", "attempts", "base"]
    );
    assert_eq!(
        value_spans(text)
            .iter()
            .map(|&(s, e)| &text[s..e])
            .collect::<Vec<_>>(),
        ["{ attempts: 5", "5", "1s "]
    );
    assert_eq!(
        apply(text, &Mutation::SwapKeys(first, last)),
        "base:\n  a:\n    retry: { attempts: 5, policies: 1s }\n"
    );
    assert_eq!(
        apply(text, &Mutation::Tab(40_000, first)),
        "policies:\n  a:\n\t    retry: { attempts: 5, base: 1s }\n"
    );
    assert_eq!(
        apply(text, &Mutation::Reindent(20_000, 0)),
        "policies:\na:\n    retry: { attempts: 5, base: 1s }\n"
    );
    assert_eq!(apply(text, &Mutation::Truncate(first)), "");
    assert_eq!(
        apply(text, &Mutation::Delete(first, 9)),
        "\n  a:\n    retry: { attempts: 5, base: 1s }\n"
    );
}
