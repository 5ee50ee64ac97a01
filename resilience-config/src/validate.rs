//! YAML text -> a checked [`PolicyFile`], or every problem with its place.
//!
//! serde_yaml attaches a line and column (and its own path) to any error raised while a
//! value is being deserialized, so every check here runs inside a serde visitor, on the token
//! it is about. serde stops at the first error, so to report several problems from one
//! reading, an error raised on a scalar (a bad value, an unknown or duplicate key) is caught by
//! the mapping or list that holds it, recorded with its place, and the reading goes on past
//! it: the scalar is consumed, so the parser is where it would have been. A problem that
//! leaves the parser inside a list or mapping (a list where a number goes) ends the reading:
//! what was found up to it is reported.
//!
//! Before any of that, [`limits::check`] bounds the text's size and nesting, and
//! [`Pass::count`] bounds the values the document expands to through aliases.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{ConfigError, ConfigErrors};
use crate::keys::{self, Doc, Read};
use crate::limits::{self, MAX_VALUES};
use crate::retry::RetryOn;
use crate::rules;
use crate::scalar::{Problem, Scalar, list, on_item, shown};
use crate::schema::{NamedPolicy, PolicyFile};

/// At most this many problems are reported for one file; the rest wait for the next edit.
const MAX_ERRORS: usize = 20;

/// Reads `text` (from `file`, for the messages).
pub(crate) fn parse(text: &str, file: Option<&Path>) -> Result<PolicyFile, ConfigErrors> {
    let located = |line, column, path: String, message, hint| ConfigError {
        file: file.map(Path::to_path_buf),
        line,
        column,
        path,
        message,
        hint,
    };
    if let Err(exceeded) = limits::check(text) {
        return Err(ConfigErrors::new(vec![located(
            exceeded.line,
            exceeded.column,
            String::new(),
            exceeded.message,
            Some(exceeded.hint),
        )]));
    }
    let pass = Pass {
        failure: RefCell::new(None),
        found: RefCell::new(Vec::new()),
        stopped: Cell::new(false),
        values: Cell::new(0),
    };
    let read = FileSeed(&pass).deserialize(serde_yaml::Deserializer::from_str(text));
    let mut found = pass.found.take();
    match read {
        Ok(policies) if found.is_empty() => return Ok(policies),
        Ok(_) => {}
        // The last problem recorded stopped the reading: it is in `found` already.
        Err(_) if pass.stopped.get() => {}
        Err(error) => {
            let message = error.to_string();
            // A character the reader refuses is placed by serde_yaml at the document's start,
            // with its real place in the message ("at position N").
            let (line, column) = match error.location() {
                Some(place) if !message.contains("at position ") => (place.line(), place.column()),
                _ => place_of(text, &message),
            };
            let failure = pass.failure.take().unwrap_or_else(|| Failure {
                path: String::new(),
                message: clean(&message),
                hint: None,
                recoverable: false,
            });
            found.push(Found {
                line,
                column,
                failure,
            });
        }
    }
    let errors = found
        .into_iter()
        .map(
            |Found {
                 line,
                 column,
                 failure,
             }| {
                let hint = failure.hint.or_else(|| tab_hint(text, line));
                located(line, column, failure.path, failure.message, hint)
            },
        )
        .collect();
    Err(ConfigErrors::new(errors))
}

/// Reads the named policies (what a policy file has under `policies:`) from any
/// self-describing serde format: a `policies:` block inside a service's own configuration, read
/// with figment, config-rs, serde_json or serde_yaml. Every check of a policy file applies: an
/// unknown key, a value outside its rule or a malformed duration is an error that names the
/// key's path and the problem (every problem found, one per line), never a value dropped.
///
/// ```
/// # use resilience_config as resilience;
/// #[derive(serde::Deserialize)]
/// struct Service {
///     #[serde(deserialize_with = "resilience::deserialize_policies")]
///     policies: std::collections::BTreeMap<String, resilience::NamedPolicy>,
/// }
///
/// let service: Service =
///     serde_yaml::from_str("policies:\n  search:\n    retry: { attempts: 5 }\n").unwrap();
/// assert_eq!(service.policies["search"].retry.unwrap().attempts, Some(5));
///
/// let error = serde_yaml::from_str::<Service>("policies:\n  search:\n    retry: { jitter: 1.5 }\n")
///     .err()
///     .unwrap();
/// assert!(error.to_string().contains(
///     "policies.search.retry.jitter: `jitter` must be between 0.0 and 1.0, found 1.5"
/// ));
/// ```
pub fn deserialize_policies<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, NamedPolicy>, D::Error> {
    let pass = Pass {
        failure: RefCell::new(None),
        found: RefCell::new(Vec::new()),
        stopped: Cell::new(false),
        values: Cell::new(0),
    };
    let read = PoliciesSeed(&pass).deserialize(deserializer);
    let described = |failure: Failure| {
        let path = if failure.path.is_empty() {
            "policies".to_string()
        } else {
            failure.path
        };
        match failure.hint {
            Some(hint) => format!("{path}: {}; {hint}", failure.message),
            None => format!("{path}: {}", failure.message),
        }
    };
    let mut problems: Vec<String> = pass
        .found
        .take()
        .into_iter()
        .map(|found| described(found.failure))
        .collect();
    match read {
        Ok(policies) if problems.is_empty() => return Ok(policies),
        Ok(_) => {}
        // The last problem recorded stopped the reading: it is in `problems` already.
        Err(_) if pass.stopped.get() => {}
        Err(error) => match pass.failure.take() {
            Some(failure) => problems.push(described(failure)),
            None if problems.is_empty() => return Err(error),
            None => problems.push(error.to_string()),
        },
    }
    Err(de::Error::custom(problems.join("\n")))
}

/// The place serde_yaml appends to an error's message (`... at line 4 column 17`); the
/// document's start when it has none (serde_yaml omits the place of the very first byte).
fn mark_of(message: &str) -> (usize, usize) {
    message
        .rfind(" at line ")
        .and_then(|at| {
            let (line, column) = message[at + " at line ".len()..].split_once(" column ")?;
            Some((line.parse().ok()?, column.parse().ok()?))
        })
        .unwrap_or((1, 1))
}

/// serde_yaml's message without the place and path it prints around it (we print our own).
fn clean(message: &str) -> String {
    let message = match message.find(" at line ") {
        Some(at) => {
            let rest = &message[at + " at line ".len()..];
            // Keep what follows the place (", while scanning for the next token").
            let tail = rest.find(',').map_or("", |comma| &rest[comma..]);
            format!("{}{tail}", &message[..at])
        }
        None => message.to_string(),
    };
    match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => rest.to_string(),
        _ => message,
    }
}

/// The place of an error serde_yaml reports without one: a second document starts at its
/// `---` (or after its `...`); a character the reader refuses is "at position N" (a byte
/// offset). Anything else is placed at the start.
fn place_of(text: &str, message: &str) -> (usize, usize) {
    if message.contains("more than one document") {
        let mut seen_content = false;
        for (index, line) in text.lines().enumerate() {
            if line.starts_with("---") || line.starts_with("...") {
                if seen_content {
                    return (index + 1, 1);
                }
            } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
                seen_content = true;
            }
        }
    }
    if let Some(offset) = message
        .split("at position ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<usize>().ok())
    {
        let before = &text.as_bytes()[..offset.min(text.len())];
        let line = before.iter().filter(|byte| **byte == b'\n').count() + 1;
        let start = before
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |newline| newline + 1);
        return (line, offset.min(text.len()) - start + 1);
    }
    (1, 1)
}

/// YAML refuses tabs in indentation with a scanner error; say so plainly.
fn tab_hint(text: &str, line: usize) -> Option<String> {
    let source = text.lines().nth(line.checked_sub(1)?)?;
    source
        .contains('\t')
        .then(|| "YAML does not allow tabs for indentation: indent with spaces".to_string())
}

/// One reading of the document.
struct Pass {
    /// The problem being raised, where serde_yaml's error cannot say it our way: taken by
    /// [`Pass::recover`] when it is caught, left for [`parse`] when it ends the reading.
    failure: RefCell<Option<Failure>>,
    /// The problems recorded so far, with their places.
    found: RefCell<Vec<Found>>,
    /// Whether the reading was stopped (at [`MAX_ERRORS`], or at a limit).
    stopped: Cell<bool>,
    /// Values read so far, aliases expanded.
    values: Cell<usize>,
}

struct Failure {
    path: String,
    message: String,
    hint: Option<String>,
    /// Whether the parser is past the offending value (a scalar), so reading can go on.
    recoverable: bool,
}

struct Found {
    line: usize,
    column: usize,
    failure: Failure,
}

impl Pass {
    /// Records the problem at `path` (the first of this reading wins) and returns the error
    /// that makes serde_yaml attach the place of the token being read. `recoverable` says the
    /// offending token is a scalar, consumed by the time the error is caught.
    fn raise<E: de::Error>(&self, path: &str, problem: Problem, recoverable: bool) -> E {
        let Problem(message, hint) = problem;
        let error = E::custom(&message);
        self.failure.borrow_mut().get_or_insert(Failure {
            path: path.to_string(),
            message,
            hint,
            recoverable,
        });
        error
    }

    /// A problem with a scalar: reading goes on past it.
    fn fail<E: de::Error>(&self, path: &str, problem: Problem) -> E {
        self.raise(path, problem, true)
    }

    /// A problem with a list or mapping, or with the whole document: it ends the reading.
    fn halt<E: de::Error>(&self, path: &str, problem: Problem) -> E {
        self.raise(path, problem, false)
    }

    /// Records an error serde raised itself (a mapping where a value was expected) at `path`,
    /// unless a deeper one was recorded already.
    ///
    /// Only type errors are recorded: anything else (a YAML syntax error, the recursion limit)
    /// means the document cannot be read past it, and is reported as serde_yaml says it.
    fn note<E: fmt::Display>(&self, path: &str, error: &E) {
        let message = clean(&error.to_string());
        if !message.starts_with("invalid type") && !message.starts_with("invalid value") {
            return;
        }
        // serde_yaml consumed the offending event only when it was a plain scalar: a list or
        // a mapping is left open, and a tagged value (`!tag 5`) is put back to be read as an
        // enum.
        let recoverable = [
            "boolean",
            "integer",
            "floating point",
            "character",
            "string",
            "unit value",
        ]
        .iter()
        .any(|kind| message.starts_with(&format!("invalid type: {kind}")));
        self.failure.borrow_mut().get_or_insert_with(|| Failure {
            path: path.to_string(),
            message,
            hint: None,
            recoverable,
        });
    }

    /// Catches `error`, raised while reading the value at `path`: when the parser is past the
    /// offending scalar, the problem is recorded and reading goes on (`Ok`); otherwise the
    /// error goes on up and ends the reading.
    fn recover<E: fmt::Display>(&self, error: E, path: &str) -> Result<(), E> {
        if self.stopped.get() {
            return Err(error);
        }
        self.note(path, &error);
        let failure = match self.failure.take() {
            Some(failure) if failure.recoverable => failure,
            other => {
                self.failure.replace(other);
                return Err(error);
            }
        };
        let (line, column) = mark_of(&error.to_string());
        let mut found = self.found.borrow_mut();
        found.push(Found {
            line,
            column,
            failure,
        });
        if found.len() >= MAX_ERRORS {
            self.stopped.set(true);
            return Err(error);
        }
        Ok(())
    }

    /// Counts one value read; past [`MAX_VALUES`] (aliases repeat what their anchor names)
    /// the reading stops with a located error.
    fn count<E: de::Error>(&self, path: impl FnOnce() -> String) -> Result<(), E> {
        let values = self.values.get() + 1;
        self.values.set(values);
        if values > MAX_VALUES {
            return Err(self.halt(
                &path(),
                Problem::new(format!(
                    "the file expands to more than {MAX_VALUES} values, the limit of a policy file"
                ))
                .hint(Some(
                    "an alias (`*name`) repeats every value its anchor names: use fewer aliases of large values".to_string(),
                )),
            ));
        }
        Ok(())
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Reads the next value of `map` with `seed`: `None` when the value was refused and the
/// reading goes on past it (the problem is recorded).
fn value<'de, A: MapAccess<'de>, S: DeserializeSeed<'de>>(
    pass: &Pass,
    map: &mut A,
    path: &str,
    seed: S,
) -> Result<Option<S::Value>, A::Error> {
    match map.next_value_seed(seed) {
        Ok(value) => Ok(Some(value)),
        Err(error) => pass.recover(error, path).map(|()| None),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// A key of a mapping: `None` accepts any name (policy names).
struct KeySeed<'p> {
    pass: &'p Pass,
    parent: &'p str,
    known: Option<&'static [&'static str]>,
    /// What the mapping's keys are, for messages ("key of `retry`").
    what: &'p str,
    seen: &'p mut HashSet<String>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} (a name)", self.what)
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<String, E> {
        let path = join(self.parent, &shown(name));
        self.pass.count(|| path.clone())?;
        if !self.seen.insert(name.to_string()) {
            return Err(self.pass.fail(
                &path,
                Problem::new(format!("duplicate {} `{}`", self.what, shown(name))),
            ));
        }
        let Some(known) = self.known else {
            if name.is_empty() {
                return Err(self
                    .pass
                    .fail(&path, Problem::new("a policy name cannot be empty")));
            }
            return Ok(name.to_string());
        };
        if known.contains(&name) {
            return Ok(name.to_string());
        }
        let problem = if keys::ATTRIBUTE_ONLY.iter().any(|only| only.contains(&name)) {
            Problem::new(format!(
                "`{name}` can only be set in the attribute: it is code, not a value"
            ))
        } else {
            let hint = match rules::did_you_mean(name, known) {
                Some(meant) => format!("did you mean `{meant}`?"),
                None => format!("expected one of {}", list(known)),
            };
            Problem::new(format!("unknown {} `{}`", self.what, shown(name))).hint(Some(hint))
        };
        Err(self.pass.fail(&path, problem))
    }

    fn visit_u64<E: de::Error>(self, name: u64) -> Result<String, E> {
        self.visit_str(&name.to_string())
    }

    fn visit_i64<E: de::Error>(self, name: i64) -> Result<String, E> {
        self.visit_str(&name.to_string())
    }

    fn visit_bool<E: de::Error>(self, name: bool) -> Result<String, E> {
        self.visit_str(&name.to_string())
    }
}

/// Reads the next key of `map`: `Ok(Some(None))` when the key was refused (the problem is
/// recorded and its value read past), `Ok(None)` at the mapping's end.
fn next_key<'de, A: MapAccess<'de>>(
    pass: &Pass,
    map: &mut A,
    seed: KeySeed<'_>,
) -> Result<Option<Option<String>>, A::Error> {
    let parent = seed.parent;
    match map.next_key_seed(seed) {
        Ok(key) => Ok(key.map(Some)),
        Err(error) => {
            pass.recover(error, parent)?;
            map.next_value::<IgnoredAny>()?;
            Ok(Some(None))
        }
    }
}

/// Reads every entry of a mapping whose keys are `known`, handing each known key's value to
/// `read` (a refused key's value is read past).
fn entries<'de, A: MapAccess<'de>>(
    pass: &Pass,
    map: &mut A,
    parent: &str,
    known: &'static [&'static str],
    what: &str,
    mut read: impl FnMut(&mut A, &str, &str) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut seen = HashSet::new();
    loop {
        let seed = KeySeed {
            pass,
            parent,
            known: Some(known),
            what,
            seen: &mut seen,
        };
        match next_key(pass, map, seed)? {
            None => return Ok(()),
            Some(None) => {}
            Some(Some(key)) => read(map, &key, &join(parent, &key))?,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The document, `policies`, one policy
// ---------------------------------------------------------------------------------------------

struct FileSeed<'p>(&'p Pass);

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = PolicyFile;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<PolicyFile, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = PolicyFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping with a `policies` key")
    }

    fn visit_unit<E: de::Error>(self) -> Result<PolicyFile, E> {
        Err(self.0.halt(
            "",
            Problem::new("the file is empty").hint(Some(
                "expected `policies:` with the named policies under it".to_string(),
            )),
        ))
    }

    /// An empty value: serde_yaml gives `None` for an empty document or `key:`.
    fn visit_none<E: de::Error>(self) -> Result<PolicyFile, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PolicyFile, A::Error> {
        let pass = self.0;
        let mut policies = None;
        let mut refused = false;
        let mut seen = HashSet::new();
        loop {
            let seed = KeySeed {
                pass,
                parent: "",
                known: Some(&["policies"]),
                what: "top-level key",
                seen: &mut seen,
            };
            match next_key(pass, &mut map, seed)? {
                None => break,
                Some(None) => refused = true,
                Some(Some(_)) => match value(pass, &mut map, "policies", PoliciesSeed(pass))? {
                    Some(read) => policies = Some(read),
                    None => refused = true,
                },
            }
        }
        match policies {
            Some(policies) => Ok(PolicyFile { policies }),
            // A misspelt `polices:` (or a bad `policies:`) was reported already; do not report
            // its absence too.
            None if refused => Ok(PolicyFile::default()),
            None => Err(pass.halt(
                "",
                Problem::new("missing `policies`").hint(Some(
                    "expected `policies:` with the named policies under it".to_string(),
                )),
            )),
        }
    }
}

struct PoliciesSeed<'p>(&'p Pass);

impl<'de> DeserializeSeed<'de> for PoliciesSeed<'_> {
    type Value = BTreeMap<String, NamedPolicy>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PoliciesSeed<'_> {
    type Value = BTreeMap<String, NamedPolicy>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of policy names to policies")
    }

    /// `policies:` with nothing under it: no policies (every site keeps its inline values).
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    /// An empty value: serde_yaml gives `None` for an empty document or `key:`.
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let pass = self.0;
        let mut policies = BTreeMap::new();
        let mut seen = HashSet::new();
        loop {
            let seed = KeySeed {
                pass,
                parent: "policies",
                known: None,
                what: "policy",
                seen: &mut seen,
            };
            let name = match next_key(pass, &mut map, seed)? {
                None => return Ok(policies),
                Some(None) => continue,
                Some(Some(name)) => name,
            };
            let path = join("policies", &shown(&name));
            if let Some(policy) = value(pass, &mut map, &path, PolicySeed { pass, path: &path })? {
                policies.insert(name, policy);
            }
        }
    }
}

struct PolicySeed<'p> {
    pass: &'p Pass,
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for PolicySeed<'_> {
    type Value = NamedPolicy;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<NamedPolicy, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PolicySeed<'_> {
    type Value = NamedPolicy;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting::<NamedPolicy>(f)
    }

    /// A policy with no sections: it exists, and changes nothing.
    fn visit_unit<E: de::Error>(self) -> Result<NamedPolicy, E> {
        Ok(NamedPolicy::default())
    }

    /// An empty value: serde_yaml gives `None` for an empty document or `key:`.
    fn visit_none<E: de::Error>(self) -> Result<NamedPolicy, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NamedPolicy, A::Error> {
        fields(self.pass, map, self.path)
    }
}

// ---------------------------------------------------------------------------------------------
// Sections: a mapping read with its key table
// ---------------------------------------------------------------------------------------------

/// What a mapping of `D`'s keys is, for serde's "expected ..." (the keys YAML takes).
fn expecting<D: Doc>(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "a mapping of {} ({})", D::WHATS, list(D::YAML))
}

/// Reads a mapping of `D`'s keys, each value with the reader its table gives.
fn fields<'de, A: MapAccess<'de>, D: Doc>(
    pass: &Pass,
    mut map: A,
    path: &str,
) -> Result<D, A::Error> {
    pass.count(|| path.to_string())?;
    let mut doc = D::default();
    entries(pass, &mut map, path, D::YAML, D::WHAT, |map, name, path| {
        match D::KEYS.iter().find(|key| key.name == name) {
            Some(key) => read(pass, map, path, key.name, &key.read, &mut doc),
            // `entries` hands on only the keys of `D::YAML`, the table's own.
            None => Ok(()),
        }
    })?;
    Ok(doc)
}

/// Reads the value of the key `name` of `doc` with `read`.
fn read<'de, A: MapAccess<'de>, D>(
    pass: &Pass,
    map: &mut A,
    path: &str,
    name: &'static str,
    read: &Read<D>,
    doc: &mut D,
) -> Result<(), A::Error> {
    match *read {
        // Not in `D::YAML`: its key was refused, with the reason, and its value read past.
        Read::Attribute => {}
        Read::Scalar(set) => {
            leaf(pass, map, path, name, |key, value| set(doc, key, value))?;
        }
        Read::On(set) => {
            if let Some(items) = value(pass, map, path, OnSeed { pass, path })? {
                set(doc, items);
            }
        }
        Read::Retry(slot) => *slot(doc) = section(pass, map, path)?,
        Read::RateLimit(slot) => *slot(doc) = section(pass, map, path)?,
        Read::Cache(slot) => *slot(doc) = section(pass, map, path)?,
        Read::CircuitBreaker(slot) => *slot(doc) = section(pass, map, path)?,
        Read::Bulkhead(slot) => *slot(doc) = section(pass, map, path)?,
        Read::RetryBudget(slot) => *slot(doc) = section(pass, map, path)?,
        Read::Hedge(slot) => *slot(doc) = section(pass, map, path)?,
        Read::Alert(slot) => *slot(doc) = section(pass, map, path)?,
        Read::Local(slot) => *slot(doc) = section(pass, map, path)?,
        Read::Timeout(slots) => {
            let seed = TimeoutSeed {
                leaf: LeafSeed {
                    pass,
                    path,
                    index: None,
                    key: name,
                    check: crate::scalar::positive as CheckDuration,
                },
            };
            let (plain, phases) = slots(doc);
            match value(pass, map, path, seed)? {
                Some(Timeout::Plain(limit)) => *plain = Some(limit),
                Some(Timeout::Phases(timeouts)) => *phases = Some(timeouts),
                None => {}
            }
        }
    }
    Ok(())
}

/// Reads the next value of `map` as the section `D`.
fn section<'de, A: MapAccess<'de>, D: Doc>(
    pass: &Pass,
    map: &mut A,
    path: &str,
) -> Result<Option<D>, A::Error> {
    let seed = SectionSeed {
        pass,
        path,
        section: std::marker::PhantomData::<D>,
    };
    value(pass, map, path, seed)
}

struct SectionSeed<'p, D> {
    pass: &'p Pass,
    path: &'p str,
    section: std::marker::PhantomData<D>,
}

impl<'de, D: Doc> DeserializeSeed<'de> for SectionSeed<'_, D> {
    type Value = D;

    fn deserialize<De: Deserializer<'de>>(self, deserializer: De) -> Result<D, De::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, D: Doc> Visitor<'de> for SectionSeed<'_, D> {
    type Value = D;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting::<D>(f)
    }

    /// `retry:` with nothing under it: a section that changes nothing.
    fn visit_unit<E: de::Error>(self) -> Result<D, E> {
        Ok(D::default())
    }

    /// An empty value: serde_yaml gives `None` for an empty document or `key:`.
    fn visit_none<E: de::Error>(self) -> Result<D, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<D, A::Error> {
        fields(self.pass, map, self.path)
    }
}

// ---------------------------------------------------------------------------------------------
// `timeout`: one duration, or a mapping of HTTP phases
// ---------------------------------------------------------------------------------------------

/// A `timeout` as written.
enum Timeout {
    /// `timeout: 3s`: the limit of each try.
    Plain(std::time::Duration),
    /// `timeout: { connect: 3s, read: 10s, total: 30s }`.
    Phases(crate::timeout::HttpTimeouts),
}

/// A `timeout`: a scalar is read as a positive duration (by `leaf`), a mapping with the
/// `timeout` key table.
struct TimeoutSeed<'p, F> {
    leaf: LeafSeed<'p, F>,
}

type CheckDuration = fn(&'static str, Scalar<'_>) -> Result<std::time::Duration, Problem>;

impl<'de> DeserializeSeed<'de> for TimeoutSeed<'_, CheckDuration> {
    type Value = Timeout;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Timeout, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Each scalar goes to the leaf's own visitor, so a bad duration reads as in every other key.
macro_rules! plain_timeout {
    ($($visit:ident($($ty:ty)?)),*) => {$(
        fn $visit<E: de::Error>(self $(, v: $ty)?) -> Result<Timeout, E> {
            self.leaf.$visit($({ let v: $ty = v; v })?).map(Timeout::Plain)
        }
    )*};
}

impl<'de> Visitor<'de> for TimeoutSeed<'_, CheckDuration> {
    type Value = Timeout;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration (e.g. `3s`), or a mapping of `timeout` keys (connect, read, total)")
    }

    plain_timeout!(
        visit_unit(),
        visit_none(),
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_i128(i128),
        visit_u128(u128),
        visit_f64(f64),
        visit_str(&str)
    );

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Timeout, A::Error> {
        self.leaf.visit_seq(seq).map(Timeout::Plain)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Timeout, A::Error> {
        fields(self.leaf.pass, map, self.leaf.path).map(Timeout::Phases)
    }
}

// ---------------------------------------------------------------------------------------------
// `on`: a list of error kinds, status codes and classes
// ---------------------------------------------------------------------------------------------

struct OnSeed<'p> {
    pass: &'p Pass,
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for OnSeed<'_> {
    type Value = RetryOn;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl OnSeed<'_> {
    /// A single item written without brackets (`on: 503`): a list of one.
    fn one<E: de::Error>(self, item: Scalar) -> Result<RetryOn, E> {
        on_item("on", item).map_err(|problem| self.pass.fail(self.path, problem))
    }
}

impl<'de> Visitor<'de> for OnSeed<'_> {
    type Value = RetryOn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of error kinds and status codes (e.g. `[Timeout, 503, 5xx]`)")
    }

    fn visit_str<E: de::Error>(self, item: &str) -> Result<Self::Value, E> {
        self.one(Scalar::Str(item))
    }

    fn visit_u64<E: de::Error>(self, item: u64) -> Result<Self::Value, E> {
        self.one(Scalar::Int(i128::from(item)))
    }

    fn visit_i64<E: de::Error>(self, item: i64) -> Result<Self::Value, E> {
        self.one(Scalar::Int(i128::from(item)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.pass.count(|| self.path.to_string())?;
        let mut on = RetryOn::NONE;
        for index in 0.. {
            let seed = LeafSeed {
                pass: self.pass,
                path: self.path,
                index: Some(index),
                key: "on",
                check: on_item,
            };
            match seq.next_element_seed(seed) {
                Ok(Some(item)) => on = on.with(item),
                Ok(None) => break,
                Err(error) => self
                    .pass
                    .recover(error, &item_path(self.path, Some(index)))?,
            }
        }
        Ok(on)
    }
}

/// Reads the next value of `map` as one scalar checked by `check`.
fn leaf<'de, A: MapAccess<'de>, T>(
    pass: &Pass,
    map: &mut A,
    path: &str,
    key: &'static str,
    check: impl FnOnce(&'static str, Scalar<'_>) -> Result<T, Problem>,
) -> Result<Option<T>, A::Error> {
    let seed = LeafSeed {
        pass,
        path,
        index: None,
        key,
        check,
    };
    value(pass, map, path, seed)
}

/// One scalar, checked by `check`: a value's rule, or a rule and where its value goes.
struct LeafSeed<'p, F> {
    pass: &'p Pass,
    path: &'p str,
    /// The item's index, for an item of a list (`on[3]`): its path is only written out for
    /// a message.
    index: Option<usize>,
    key: &'static str,
    check: F,
}

impl<'de, T, F: FnOnce(&'static str, Scalar<'_>) -> Result<T, Problem>> DeserializeSeed<'de>
    for LeafSeed<'_, F>
{
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<F> LeafSeed<'_, F> {
    fn path(&self) -> String {
        item_path(self.path, self.index)
    }

    fn checked<T, E: de::Error>(self, scalar: Scalar<'_>) -> Result<T, E>
    where
        F: FnOnce(&'static str, Scalar<'_>) -> Result<T, Problem>,
    {
        self.pass.count(|| self.path())?;
        let LeafSeed {
            pass,
            path,
            index,
            key,
            check,
        } = self;
        check(key, scalar).map_err(|problem| pass.fail(&item_path(path, index), problem))
    }
}

/// `path`, or the path of its item `index`.
fn item_path(path: &str, index: Option<usize>) -> String {
    match index {
        Some(index) => format!("{path}[{index}]"),
        None => path.to_string(),
    }
}

impl<'de, T, F: FnOnce(&'static str, Scalar<'_>) -> Result<T, Problem>> Visitor<'de>
    for LeafSeed<'_, F>
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value for `{}`", self.key)
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        self.checked(Scalar::Null)
    }

    /// An empty value: serde_yaml gives `None` for an empty document or `key:`.
    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        self.checked(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.checked(Scalar::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.checked(Scalar::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
        self.checked(Scalar::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
        self.checked(Scalar::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.checked(Scalar::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        self.checked(Scalar::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<T, A::Error> {
        let key = self.key;
        Err(self.pass.halt(
            &self.path(),
            Problem::new(format!("`{key}` takes one value, found a list")),
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<T, A::Error> {
        let key = self.key;
        Err(self.pass.halt(
            &self.path(),
            Problem::new(format!("`{key}` takes one value, found a mapping")),
        ))
    }
}
