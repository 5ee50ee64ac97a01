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
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::duration::{DurationError, MAX_DURATION_TEXT, parse_duration};
use crate::error::{ConfigError, ConfigErrors};
use crate::limits::{self, MAX_VALUES};
use crate::rules;
use crate::schema::*;

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

/// A check's verdict on a bad value: the message and an optional hint.
struct Problem(String, Option<String>);

impl Problem {
    fn new(message: impl Into<String>) -> Self {
        Problem(message.into(), None)
    }

    fn hint(mut self, hint: Option<String>) -> Self {
        self.1 = hint;
        self
    }
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

/// Text a user wrote, shortened for a message: a key or value of a megabyte would otherwise
/// be copied into every message and path that names it.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX_SHOWN: usize = 64;
    match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()).into(),
        None => text.into(),
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
        let problem = if ATTRIBUTE_ONLY_KEYS.contains(&name) {
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

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
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
    type Value = BTreeMap<String, PolicyDoc>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PoliciesSeed<'_> {
    type Value = BTreeMap<String, PolicyDoc>;

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
    type Value = PolicyDoc;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<PolicyDoc, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PolicySeed<'_> {
    type Value = PolicyDoc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping of sections ({})", list(SECTION_KEYS))
    }

    /// A policy with no sections: it exists, and changes nothing.
    fn visit_unit<E: de::Error>(self) -> Result<PolicyDoc, E> {
        Ok(PolicyDoc::default())
    }

    /// An empty value: serde_yaml gives `None` for an empty document or `key:`.
    fn visit_none<E: de::Error>(self) -> Result<PolicyDoc, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PolicyDoc, A::Error> {
        let pass = self.pass;
        pass.count(|| self.path.to_string())?;
        let mut doc = PolicyDoc::default();
        entries(
            pass,
            &mut map,
            self.path,
            SECTION_KEYS,
            "section",
            |map, key, path| {
                match key {
                    "retry" => doc.retry = section(pass, map, path)?,
                    "rate_limit" => doc.rate_limit = section(pass, map, path)?,
                    "cache" => doc.cache = section(pass, map, path)?,
                    "circuit_breaker" => doc.circuit_breaker = section(pass, map, path)?,
                    "bulkhead" => doc.bulkhead = section(pass, map, path)?,
                    "alert" => doc.alert = section(pass, map, path)?,
                    "timeout" => doc.timeout = leaf(pass, map, path, "timeout", positive)?,
                    "backend" => doc.backend = leaf(pass, map, path, "backend", backend)?,
                    "backend_timeout" => {
                        doc.backend_timeout = leaf(pass, map, path, "backend_timeout", positive)?;
                    }
                    "on_backend_error" => {
                        doc.on_backend_error =
                            leaf(pass, map, path, "on_backend_error", on_backend_error)?;
                    }
                    "key_prefix" => {
                        doc.key_prefix = leaf(pass, map, path, "key_prefix", text)?;
                    }
                    _ => {}
                }
                Ok(())
            },
        )?;
        Ok(doc)
    }
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

/// One section's document: its name, its keys, and how each key's value is read.
trait Section: Default {
    const NAME: &'static str;
    const KEYS: &'static [&'static str];

    /// Reads the value of `key` (a known key) into `self`.
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        pass: &Pass,
        map: &mut A,
        key: &str,
        path: &str,
    ) -> Result<(), A::Error>;
}

/// Reads the next value of `map` as the section `T`.
fn section<'de, A: MapAccess<'de>, T: Section>(
    pass: &Pass,
    map: &mut A,
    path: &str,
) -> Result<Option<T>, A::Error> {
    let seed = SectionSeed {
        pass,
        path,
        section: std::marker::PhantomData::<T>,
    };
    value(pass, map, path, seed)
}

struct SectionSeed<'p, T> {
    pass: &'p Pass,
    path: &'p str,
    section: std::marker::PhantomData<T>,
}

impl<'de, T: Section> DeserializeSeed<'de> for SectionSeed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: Section> Visitor<'de> for SectionSeed<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping of `{}` keys ({})", T::NAME, list(T::KEYS))
    }

    /// `retry:` with nothing under it: a section that changes nothing.
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    /// An empty value: serde_yaml gives `None` for an empty document or `key:`.
    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        self.pass.count(|| self.path.to_string())?;
        let mut doc = T::default();
        let what = format!("`{}` key", T::NAME);
        entries(
            self.pass,
            &mut map,
            self.path,
            T::KEYS,
            &what,
            |map, key, path| doc.read(self.pass, map, key, path),
        )?;
        Ok(doc)
    }
}

impl Section for RetryDoc {
    const NAME: &'static str = "retry";
    const KEYS: &'static [&'static str] = RETRY_KEYS;

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        pass: &Pass,
        map: &mut A,
        key: &str,
        path: &str,
    ) -> Result<(), A::Error> {
        match key {
            "attempts" => self.attempts = leaf(pass, map, path, "attempts", attempts)?,
            "backoff" => self.backoff = leaf(pass, map, path, "backoff", backoff)?,
            "base" => self.base = leaf(pass, map, path, "base", duration)?,
            "factor" => self.factor = leaf(pass, map, path, "factor", factor)?,
            "max_delay" => self.max_delay = leaf(pass, map, path, "max_delay", duration)?,
            "max_elapsed" => {
                self.max_elapsed = leaf(pass, map, path, "max_elapsed", optional_duration)?;
            }
            "jitter" => self.jitter = leaf(pass, map, path, "jitter", jitter)?,
            "on" => self.on = value(pass, map, path, OnSeed { pass, path })?,
            "retry_after" => {
                self.retry_after = leaf(pass, map, path, "retry_after", boolean)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Section for RateLimitDoc {
    const NAME: &'static str = "rate_limit";
    const KEYS: &'static [&'static str] = RATE_LIMIT_KEYS;

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        pass: &Pass,
        map: &mut A,
        key: &str,
        path: &str,
    ) -> Result<(), A::Error> {
        match key {
            "calls" => self.calls = leaf(pass, map, path, "calls", count)?,
            "period" => self.period = leaf(pass, map, path, "period", positive)?,
            "burst" => self.burst = leaf(pass, map, path, "burst", any_count)?,
            "mode" => self.mode = leaf(pass, map, path, "mode", mode)?,
            "max_wait" => {
                self.max_wait = leaf(pass, map, path, "max_wait", optional_duration)?;
            }
            "cost" => self.cost = leaf(pass, map, path, "cost", cost)?,
            _ => {}
        }
        Ok(())
    }
}

impl Section for CacheDoc {
    const NAME: &'static str = "cache";
    const KEYS: &'static [&'static str] = CACHE_KEYS;

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        pass: &Pass,
        map: &mut A,
        key: &str,
        path: &str,
    ) -> Result<(), A::Error> {
        match key {
            "enabled" => self.enabled = leaf(pass, map, path, "enabled", boolean)?,
            "ttl" => self.ttl = leaf(pass, map, path, "ttl", duration)?,
            "max_entries" => {
                self.max_entries = leaf(pass, map, path, "max_entries", count)?.map(u64::from);
            }
            "ttl_jitter" => self.ttl_jitter = leaf(pass, map, path, "ttl_jitter", fraction)?,
            "negative_ttl" => {
                self.negative_ttl = leaf(pass, map, path, "negative_ttl", optional_duration)?;
            }
            "stale_while_revalidate" => {
                self.stale_while_revalidate =
                    leaf(pass, map, path, "stale_while_revalidate", optional_duration)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Section for CircuitBreakerDoc {
    const NAME: &'static str = "circuit_breaker";
    const KEYS: &'static [&'static str] = CIRCUIT_BREAKER_KEYS;

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        pass: &Pass,
        map: &mut A,
        key: &str,
        path: &str,
    ) -> Result<(), A::Error> {
        match key {
            "failure_rate" => {
                self.failure_rate = leaf(pass, map, path, "failure_rate", fraction)?;
            }
            "min_calls" => self.min_calls = leaf(pass, map, path, "min_calls", count)?,
            "window" => self.window = leaf(pass, map, path, "window", count)?,
            "open_for" => self.open_for = leaf(pass, map, path, "open_for", positive)?,
            "half_open_calls" => {
                self.half_open_calls = leaf(pass, map, path, "half_open_calls", count)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Section for BulkheadDoc {
    const NAME: &'static str = "bulkhead";
    const KEYS: &'static [&'static str] = BULKHEAD_KEYS;

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        pass: &Pass,
        map: &mut A,
        key: &str,
        path: &str,
    ) -> Result<(), A::Error> {
        match key {
            "max_concurrent" => {
                self.max_concurrent = leaf(pass, map, path, "max_concurrent", count)?;
            }
            "max_wait" => self.max_wait = leaf(pass, map, path, "max_wait", duration)?,
            _ => {}
        }
        Ok(())
    }
}

impl Section for AlertDoc {
    const NAME: &'static str = "alert";
    const KEYS: &'static [&'static str] = ALERT_KEYS;

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        pass: &Pass,
        map: &mut A,
        key: &str,
        path: &str,
    ) -> Result<(), A::Error> {
        match key {
            "retry_rate" => self.retry_rate = leaf(pass, map, path, "retry_rate", fraction)?,
            "window" => self.window = leaf(pass, map, path, "window", positive)?,
            _ => {}
        }
        Ok(())
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
    type Value = Vec<OnItem>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl OnSeed<'_> {
    /// A single item written without brackets (`on: 503`): a list of one.
    fn one<E: de::Error>(self, item: Scalar) -> Result<Vec<OnItem>, E> {
        on_item("on", item)
            .map(|item| vec![item])
            .map_err(|problem| self.pass.fail(self.path, problem))
    }
}

impl<'de> Visitor<'de> for OnSeed<'_> {
    type Value = Vec<OnItem>;

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
        let mut items = Vec::new();
        for index in 0.. {
            let seed = LeafSeed {
                pass: self.pass,
                path: self.path,
                index: Some(index),
                key: "on",
                check: on_item,
            };
            match seq.next_element_seed(seed) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(error) => self
                    .pass
                    .recover(error, &item_path(self.path, Some(index)))?,
            }
        }
        Ok(items)
    }
}

// ---------------------------------------------------------------------------------------------
// Leaves: one scalar, checked by the shared rules
// ---------------------------------------------------------------------------------------------

/// A scalar as YAML typed it.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("nothing"),
            Scalar::Bool(b) => write!(f, "`{b}`"),
            Scalar::Int(n) => write!(f, "`{n}`"),
            Scalar::Float(x) => write!(f, "`{x}`"),
            Scalar::Str(s) => write!(f, "`{}`", shown(s)),
        }
    }
}

type Check<T> = fn(&str, Scalar<'_>) -> Result<T, Problem>;

/// Reads the next value of `map` as one scalar checked by `check`.
fn leaf<'de, A: MapAccess<'de>, T>(
    pass: &Pass,
    map: &mut A,
    path: &str,
    key: &'static str,
    check: Check<T>,
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

struct LeafSeed<'p, T> {
    pass: &'p Pass,
    path: &'p str,
    /// The item's index, for an item of a list (`on[3]`): its path is only written out for
    /// a message.
    index: Option<usize>,
    key: &'static str,
    check: Check<T>,
}

impl<'de, T> DeserializeSeed<'de> for LeafSeed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<T> LeafSeed<'_, T> {
    fn path(&self) -> String {
        item_path(self.path, self.index)
    }

    fn checked<E: de::Error>(self, scalar: Scalar<'_>) -> Result<T, E> {
        self.pass.count(|| self.path())?;
        (self.check)(self.key, scalar).map_err(|problem| self.pass.fail(&self.path(), problem))
    }
}

/// `path`, or the path of its item `index`.
fn item_path(path: &str, index: Option<usize>) -> String {
    match index {
        Some(index) => format!("{path}[{index}]"),
        None => path.to_string(),
    }
}

impl<'de, T> Visitor<'de> for LeafSeed<'_, T> {
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

// The checks. Each value rule itself is in `rules.rs` / `duration.rs`, shared with the macros.

/// A whole number, in u64; a negative one is refused as below `minimum`.
fn whole(key: &str, scalar: Scalar<'_>, minimum: u64) -> Result<u64, Problem> {
    match scalar {
        Scalar::Int(n) if n < 0 => Err(Problem::new(format!(
            "`{key}` must be at least {minimum}, found {n}"
        ))),
        Scalar::Int(n) => {
            u64::try_from(n).map_err(|_| Problem::new(format!("`{key}` is too large, found {n}")))
        }
        Scalar::Float(x) => Err(Problem::new(format!(
            "`{key}` must be a whole number, found `{x}`"
        ))),
        other => Err(Problem::new(format!(
            "`{key}` must be a number, found {other}"
        ))),
    }
}

fn attempts(key: &str, scalar: Scalar<'_>) -> Result<u32, Problem> {
    if let Scalar::Int(n) = scalar {
        if n < 0 {
            // The rule's own words, with the value as written.
            let message = rules::check_attempts(0).err().unwrap_or_default();
            return Err(Problem::new(
                message.replace("found 0", &format!("found {n}")),
            ));
        }
    }
    rules::check_attempts(whole(key, scalar, 1)?).map_err(Problem::new)
}

/// At least 1 (`calls`, `max_concurrent`, `min_calls`, ...).
fn count(key: &str, scalar: Scalar<'_>) -> Result<u32, Problem> {
    rules::check_count(key, whole(key, scalar, 1)?).map_err(Problem::new)
}

/// A constant cost: at least 1 permit, at most what a limit can admit per period.
fn cost(key: &str, scalar: Scalar<'_>) -> Result<u64, Problem> {
    if let Scalar::Int(n) = scalar {
        if n < 0 {
            // The rule's own words, with the value as written.
            let message = rules::check_cost(0).err().unwrap_or_default();
            return Err(Problem::new(
                message.replace("found 0", &format!("found {n}")),
            ));
        }
    }
    rules::check_cost(whole(key, scalar, 1)?).map_err(Problem::new)
}

/// At least 0 (`burst`).
fn any_count(key: &str, scalar: Scalar<'_>) -> Result<u32, Problem> {
    rules::check_u32(key, whole(key, scalar, 0)?).map_err(Problem::new)
}

fn number(key: &str, scalar: Scalar<'_>) -> Result<f64, Problem> {
    match scalar {
        Scalar::Int(n) => Ok(n as f64),
        Scalar::Float(x) => Ok(x),
        other => Err(Problem::new(format!(
            "`{key}` must be a number, found {other}"
        ))),
    }
}

fn fraction(key: &str, scalar: Scalar<'_>) -> Result<f64, Problem> {
    rules::check_fraction(key, number(key, scalar)?).map_err(Problem::new)
}

fn factor(key: &str, scalar: Scalar<'_>) -> Result<f64, Problem> {
    rules::check_factor(number(key, scalar)?).map_err(Problem::new)
}

fn boolean(key: &str, scalar: Scalar<'_>) -> Result<bool, Problem> {
    match scalar {
        Scalar::Bool(b) => Ok(b),
        other => Err(Problem::new(format!(
            "`{key}` must be `true` or `false`, found {other}"
        ))),
    }
}

fn duration(key: &str, scalar: Scalar<'_>) -> Result<Duration, Problem> {
    match scalar {
        Scalar::Str(text) => parse_duration(text).map_err(|error| match error {
            DurationError::Overflow => Problem::new(format!(
                "duration `{}` for `{key}` is too large: at most `{MAX_DURATION_TEXT}`",
                shown(text)
            )),
            error => Problem::new(format!(
                "invalid duration `{}` for `{key}`: {error}",
                shown(text)
            ))
            .hint(Some("expected e.g. `250ms`, `30s`, `2m`, `1h`".to_string())),
        }),
        Scalar::Int(n) => Err(Problem::new(format!(
            "`{key}` needs a unit: `{n}` alone is ambiguous"
        ))
        .hint(Some(format!("write `{n}s` or `{n}ms`")))),
        other => Err(
            Problem::new(format!("`{key}` must be a duration, found {other}"))
                .hint(Some("expected e.g. `250ms`, `30s`, `2m`, `1h`".to_string())),
        ),
    }
}

/// A duration, or nothing (`~`) to remove a limit the attribute sets.
fn optional_duration(key: &str, scalar: Scalar<'_>) -> Result<Option<Duration>, Problem> {
    match scalar {
        Scalar::Null => Ok(None),
        other => duration(key, other).map(Some),
    }
}

/// A duration longer than zero (`period`, `timeout`, `open_for`, `window`).
fn positive(key: &str, scalar: Scalar<'_>) -> Result<Duration, Problem> {
    let value = duration(key, scalar)?;
    if value.is_zero() {
        return Err(Problem::new(format!("`{key}` must be longer than zero")));
    }
    Ok(value)
}

/// A name from `names`, with a hint for a near miss.
fn name<'n>(
    key: &str,
    what: &str,
    names: &[&'n str],
    scalar: Scalar<'_>,
) -> Result<&'n str, Problem> {
    let text = match scalar {
        Scalar::Str(text) => text,
        other => {
            return Err(Problem::new(format!(
                "`{key}` must be one of {}, found {other}",
                list(names)
            )));
        }
    };
    if let Some(found) = names.iter().find(|known| **known == text) {
        return Ok(found);
    }
    let hint = match rules::did_you_mean(text, names) {
        Some(meant) => format!("did you mean `{meant}`?"),
        None => format!("expected one of {}", list(names)),
    };
    Err(Problem::new(format!("unknown {what} `{text}`")).hint(Some(hint)))
}

fn backoff(key: &str, scalar: Scalar<'_>) -> Result<BackoffName, Problem> {
    Ok(match name(key, "backoff", rules::BACKOFF_NAMES, scalar)? {
        "linear" => BackoffName::Linear,
        "constant" => BackoffName::Constant,
        _ => BackoffName::Exp,
    })
}

fn mode(key: &str, scalar: Scalar<'_>) -> Result<ModeName, Problem> {
    Ok(match name(key, "mode", rules::LIMIT_MODE_NAMES, scalar)? {
        "reject" => ModeName::Reject,
        _ => ModeName::Wait,
    })
}

fn jitter(key: &str, scalar: Scalar<'_>) -> Result<JitterValue, Problem> {
    match scalar {
        Scalar::Int(_) | Scalar::Float(_) => rules::check_jitter(number(key, scalar)?)
            .map(JitterValue::Fraction)
            .map_err(Problem::new),
        _ => Ok(match name(key, "jitter", rules::JITTER_NAMES, scalar)? {
            "full" => JitterValue::Full,
            "equal" => JitterValue::Equal,
            _ => JitterValue::Decorrelated,
        }),
    }
}

fn on_item(_: &str, scalar: Scalar<'_>) -> Result<OnItem, Problem> {
    let text = match scalar {
        Scalar::Int(code) => {
            // Out of u64 (negative, huge): the rule's words with the value as written.
            return match u64::try_from(code) {
                Ok(code) => rules::check_status(code).map(OnItem::Status),
                Err(_) => rules::check_status(0)
                    .map(OnItem::Status)
                    .map_err(|message| message.replace("found 0", &format!("found {code}"))),
            }
            .map_err(Problem::new);
        }
        Scalar::Str(text) => text,
        other => {
            return Err(Problem::new(format!(
                "`on` takes error kinds (`Timeout`, `Connect`, `Body`, `Transient`), status codes and classes (`5xx`), found {other}"
            )));
        }
    };
    match text {
        "Timeout" => return Ok(OnItem::Timeout),
        "Connect" => return Ok(OnItem::Connect),
        "Body" => return Ok(OnItem::Body),
        "Transient" => return Ok(OnItem::Transient),
        _ => {}
    }
    if let Some(hundreds) = rules::status_class(text) {
        return Ok(OnItem::Class(hundreds));
    }
    if let Ok(code) = text.parse::<u64>() {
        return rules::check_status(code)
            .map(OnItem::Status)
            .map_err(Problem::new);
    }
    let known: Vec<&str> = rules::ERROR_KIND_NAMES
        .iter()
        .chain(rules::STATUS_CLASS_NAMES)
        .copied()
        .collect();
    let hint = match rules::did_you_mean(text, &known) {
        Some(meant) => format!("did you mean `{meant}`?"),
        None => {
            "expected `Timeout`, `Connect`, `Body`, `Transient`, a status code (`503`) or a class (`5xx`)"
                .to_string()
        }
    };
    Err(Problem::new(format!("unknown error kind `{text}` in `on`")).hint(Some(hint)))
}

fn backend(key: &str, scalar: Scalar<'_>) -> Result<BackendName, Problem> {
    match scalar {
        Scalar::Str("memory") => Ok(BackendName::Memory),
        Scalar::Str(url) if url.starts_with("redis://") || url.starts_with("redis+unix://") => {
            check_redis_url(key, url)?;
            Ok(BackendName::Redis(url.to_string()))
        }
        Scalar::Str(url) if url.starts_with("rediss://") => Err(Problem::new(format!(
            "`{key}` `{url}` asks for TLS, which this build does not support"
        ))
        .hint(Some(
            "use `redis://` (on a trusted network or through a TLS tunnel)".to_string(),
        ))),
        other => Err(Problem::new(format!("unknown `{key}` {other}")).hint(Some(
            "expected `memory` or a Redis URL such as `redis://127.0.0.1:6379/0`".to_string(),
        ))),
    }
}

/// A Redis URL the runtime can connect with: read by the redis crate's own parser, so that a
/// URL it would refuse on every call (each call then falling back) is refused here, in place.
#[cfg(feature = "redis")]
fn check_redis_url(key: &str, text: &str) -> Result<(), Problem> {
    let refused = |reason: &str| {
        Problem::new(format!(
            "`{key}` `{}` is not a valid Redis URL: {reason}",
            shown(text)
        ))
        .hint(Some(
            "expected e.g. `redis://127.0.0.1:6379/0` or `redis+unix:///run/redis.sock`"
                .to_string(),
        ))
    };
    let url = url::Url::parse(text).map_err(|error| refused(&error.to_string()))?;
    redis::IntoConnectionInfo::into_connection_info(url)
        .map(drop)
        .map_err(|error| {
            // "Missing hostname - InvalidClientConfig": the reason without the error's kind.
            let reason = error.to_string();
            let reason = reason.split(" - ").next().unwrap_or_default();
            refused(&reason.to_ascii_lowercase())
        })
}

/// Without the Redis backend compiled in, the URL is not read (the policy runs in memory).
#[cfg(not(feature = "redis"))]
fn check_redis_url(_: &str, _: &str) -> Result<(), Problem> {
    Ok(())
}

fn on_backend_error(key: &str, scalar: Scalar<'_>) -> Result<OnBackendError, Problem> {
    Ok(match name(key, key, ON_BACKEND_ERROR_NAMES, scalar)? {
        "deny" => OnBackendError::Deny,
        "local" => OnBackendError::Local,
        _ => OnBackendError::Allow,
    })
}

fn text(key: &str, scalar: Scalar<'_>) -> Result<String, Problem> {
    match scalar {
        Scalar::Str(text) => Ok(text.to_string()),
        other => Err(Problem::new(format!(
            "`{key}` must be a string, found {other}"
        ))),
    }
}
