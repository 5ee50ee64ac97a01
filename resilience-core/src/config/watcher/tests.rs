//! The file watcher alone, each reload it delivers recorded exactly:
//! it survives a panic in a reload, is not starved by a busy sibling file, refuses a FIFO or
//! a device in the file's place without blocking, never applies a half-written file, and its
//! drop never hangs.
//!
//! These tests use the real file system and its events, so they wait in real time, each wait
//! bounded (`until`, at most a few seconds) and each loop bounded in count.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::{Reload, WatchOptions, Watcher, watch, watch_with};

/// What one reload delivered: the policies' `retry.attempts` by name, or the error text.
type Delivered = Result<BTreeMap<String, Option<u32>>, String>;

#[derive(Clone, Default)]
struct Record(Arc<Mutex<Vec<Delivered>>>);

impl Record {
    fn push(&self, reload: Reload) {
        let delivered = reload
            .map(|file| {
                file.policies
                    .into_iter()
                    .map(|(name, doc)| (name, doc.retry.and_then(|retry| retry.attempts)))
                    .collect()
            })
            .map_err(|errors| errors.to_string());
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(delivered);
    }

    fn all(&self) -> Vec<Delivered> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn len(&self) -> usize {
        self.all().len()
    }

    fn last(&self) -> Option<Delivered> {
        self.all().pop()
    }
}

/// Polls `done` every 5 ms until it holds or `limit` passes; the time it took, if it held.
fn until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    for _ in 0..10_000 {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// `policies:` with one policy per `(name, attempts)`, one line per section.
fn policies(list: &[(&str, u32)]) -> String {
    let mut text = String::from("policies:\n");
    for (name, attempts) in list {
        text.push_str(&format!(
            "  {name}:\n    retry: {{ attempts: {attempts} }}\n"
        ));
    }
    text
}

fn attempts(list: &[(&str, u32)]) -> Delivered {
    Ok(list
        .iter()
        .map(|(name, attempts)| (name.to_string(), Some(*attempts)))
        .collect())
}

fn policy_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("policies.yaml");
    std::fs::write(&path, text).expect("write the policy file");
    (dir, path)
}

fn start(path: &Path, record: &Record) -> Watcher {
    let record = record.clone();
    let (_, watcher) = watch(path, move |reload| record.push(reload))
        .unwrap_or_else(|errors| panic!("watch refused the file:\n{errors}"));
    watcher
}

/// Drops `watcher` on a thread of its own: how long the drop took, or `None` when it had not
/// returned after `limit` (the thread is then left behind, so the test fails rather than hang).
fn timed_drop(watcher: Watcher, limit: Duration) -> Option<Duration> {
    let (done, finished) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let start = Instant::now();
        drop(watcher);
        let _ = done.send(start.elapsed());
    });
    finished.recv_timeout(limit).ok()
}

// ---------------------------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------------------------

#[test]
fn a_panic_in_on_reload_is_a_failed_reload_and_watching_goes_on() {
    let (_dir, path) = policy_file(&policies(&[("a", 1)]));
    let record = Record::default();
    let (_, watcher) = {
        let record = record.clone();
        watch(&path, move |reload: Reload| {
            if reload
                .as_ref()
                .is_ok_and(|file| file.policies.contains_key("boom"))
            {
                panic!("applying `boom` failed");
            }
            record.push(reload);
        })
        .unwrap()
    };

    std::fs::write(&path, policies(&[("a", 1), ("boom", 2)])).unwrap();
    assert!(
        until(Duration::from_secs(2), || record.len() == 1).is_some(),
        "the panic was not reported as a failed reload"
    );
    let reported = record.last().unwrap().unwrap_err();
    assert!(
        reported.ends_with(
            "policies.yaml: the reload panicked: applying `boom` failed; the last good policies stay in force; please report this as a bug"
        ),
        "{reported}"
    );

    std::fs::write(&path, policies(&[("a", 3)])).unwrap();
    assert!(
        until(Duration::from_secs(2), || record.len() == 2).is_some(),
        "the watcher stopped after a panic"
    );
    assert_eq!(record.last().unwrap(), attempts(&[("a", 3)]));
    // The panicking content is not read again and again: one report only.
    thread::sleep(Duration::from_millis(600));
    assert_eq!(record.len(), 2);
    drop(watcher);
}

// ---------------------------------------------------------------------------------------------
// Starvation and blocking
// ---------------------------------------------------------------------------------------------

/// Was: the settle waited for 25 ms without any event in the directory, so a sibling log
/// written every 10 ms kept the edit from applying (5 s measured).
#[test]
fn a_sibling_written_every_10ms_does_not_delay_an_edit() {
    let (dir, path) = policy_file(&policies(&[("a", 1)]));
    let record = Record::default();
    let watcher = start(&path, &record);
    let stop = Arc::new(AtomicBool::new(false));
    let logger = {
        let (log, stop) = (dir.path().join("app.log"), Arc::clone(&stop));
        thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            // 10 s at most.
            for line in 0..1_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                writeln!(file, "log line {line}").unwrap();
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    thread::sleep(Duration::from_millis(100));

    std::fs::write(&path, policies(&[("a", 2)])).unwrap();
    let took = until(Duration::from_secs(3), || record.len() == 1);
    stop.store(true, Ordering::SeqCst);
    logger.join().unwrap();
    let took = took.expect("the edit was not applied within 3 s while a sibling was written");
    assert!(took < Duration::from_secs(1), "the edit took {took:?}");
    assert_eq!(record.all(), vec![attempts(&[("a", 2)])]);
    eprintln!("edit applied {took:?} after the write, a sibling written every 10 ms");
    drop(watcher);
}

/// Was: the watcher blocked forever opening the FIFO, and dropping it hung.
#[cfg(unix)]
#[test]
fn a_fifo_in_the_files_place_is_refused_and_the_drop_returns() {
    let (_dir, path) = policy_file(&policies(&[("a", 1)]));
    let record = Record::default();
    let watcher = start(&path, &record);

    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let refused = until(Duration::from_secs(2), || record.len() == 1);
    // Dropped before any assertion, so that a hanging drop fails the test instead of hanging
    // it while it unwinds.
    let took = timed_drop(watcher, Duration::from_secs(2)).expect("the drop hung");
    assert!(refused.is_some(), "the FIFO was not refused within 2 s");
    let refused = record.last().unwrap().unwrap_err();
    assert!(
        refused.ends_with("policies.yaml: cannot read the file: it is a FIFO, not a regular file"),
        "{refused}"
    );
    assert!(took < Duration::from_millis(300), "the drop took {took:?}");
    // A one-time load is refused the same way, without blocking.
    let errors = resilience_config::load(&path).unwrap_err();
    assert!(
        errors
            .to_string()
            .ends_with("it is a FIFO, not a regular file")
    );
}

/// A symlink to `/dev/zero` would be read without bound.
#[cfg(unix)]
#[test]
fn a_symlink_to_a_device_or_a_huge_file_is_refused() {
    let (dir, path) = policy_file(&policies(&[("a", 1)]));
    let record = Record::default();
    let watcher = start(&path, &record);

    let link = dir.path().join("policies.yaml.new");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    std::fs::rename(&link, &path).unwrap();
    assert!(
        until(Duration::from_secs(2), || record.len() == 1).is_some(),
        "the device was not refused within 2 s"
    );
    let refused = record.last().unwrap().unwrap_err();
    assert!(
        refused
            .ends_with("policies.yaml: cannot read the file: it is a device, not a regular file"),
        "{refused}"
    );

    // A regular file past the limit is refused by its size, before it is read.
    let big = dir.path().join("big.yaml");
    let mut text = policies(&[("a", 1)]);
    text.push_str(&"#".repeat(resilience_config::MAX_DOCUMENT_BYTES));
    std::fs::write(&big, text).unwrap();
    std::fs::rename(&big, &path).unwrap();
    assert!(
        until(Duration::from_secs(2), || record.len() == 2).is_some(),
        "the huge file was not refused within 2 s"
    );
    let refused = record.last().unwrap().unwrap_err();
    assert!(
        refused.ends_with(
            "policies.yaml: the file is 131114 bytes, more than the 131072 bytes a policy file may have"
        ),
        "{refused}"
    );

    // Back to a good file: watching went on.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&big, policies(&[("a", 4)])).unwrap();
    std::fs::rename(&big, &path).unwrap();
    assert!(until(Duration::from_secs(2), || record.len() == 3).is_some());
    assert_eq!(record.last().unwrap(), attempts(&[("a", 4)]));
    drop(watcher);
}

#[test]
fn the_drop_returns_while_on_reload_is_still_running() {
    let (_dir, path) = policy_file(&policies(&[("a", 1)]));
    let (entered, inside) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (_, watcher) = watch(&path, move |_reload| {
        let _ = entered.send(());
        // Held until the test releases it, 5 s at most.
        let _ = released.recv_timeout(Duration::from_secs(5));
    })
    .unwrap();

    std::fs::write(&path, policies(&[("a", 2)])).unwrap();
    inside
        .recv_timeout(Duration::from_secs(2))
        .expect("on_reload was not called");
    let took = timed_drop(watcher, Duration::from_secs(2)).expect("the drop hung");
    assert!(
        took < Duration::from_millis(400),
        "the drop took {took:?} while on_reload ran"
    );
    let _ = release.send(());
}

// ---------------------------------------------------------------------------------------------
// Half-written files and empty files
// ---------------------------------------------------------------------------------------------

/// Three policies; the prefix an editor writes first holds only the first, a valid file that
/// would drop `b` and `c`.
fn version(n: u32) -> (String, String) {
    let full = policies(&[("a", n), ("b", n), ("c", n)]);
    let prefix = policies(&[("a", n)]);
    assert!(full.starts_with(&prefix));
    (prefix.clone(), full[prefix.len()..].to_string())
}

/// Was: a valid prefix of a file being written in place was installed 28 times in 40 paced
/// writes. The writer holds the file open across its steps, 60 ms or 400 ms apart (longer
/// than the settle, and than the wait for a content that removes policies).
#[test]
fn an_in_place_write_in_paced_steps_is_applied_only_when_complete() {
    let (_dir, path) = policy_file(&policies(&[("a", 1), ("b", 1), ("c", 1)]));
    let record = Record::default();
    let watcher = start(&path, &record);

    for n in 2..22 {
        let (prefix, rest) = version(n);
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(prefix.as_bytes()).unwrap();
        thread::sleep(Duration::from_millis(if n % 4 == 0 { 400 } else { 60 }));
        file.write_all(rest.as_bytes()).unwrap();
        drop(file);
        let expected = attempts(&[("a", n), ("b", n), ("c", n)]);
        assert!(
            until(Duration::from_secs(3), || record.last()
                == Some(expected.clone()))
            .is_some(),
            "version {n} was not applied within 3 s: {:?}",
            record.all()
        );
    }
    let delivered = record.all();
    let prefixes = delivered
        .iter()
        .filter(|d| d.as_ref().is_ok_and(|p| p.len() < 3));
    assert_eq!(prefixes.count(), 0, "{delivered:?}");
    assert_eq!(delivered.len(), 20, "one reload per version: {delivered:?}");
    drop(watcher);
}

/// A writer that closes the file between its steps (`>` then `>>`): the prefix removes
/// policies, so it waits for the file to stay unchanged, and the rest comes first.
#[test]
fn a_write_in_two_closed_steps_is_applied_only_when_complete() {
    let (_dir, path) = policy_file(&policies(&[("a", 1), ("b", 1), ("c", 1)]));
    let record = Record::default();
    let watcher = start(&path, &record);

    for n in 2..22 {
        let (prefix, rest) = version(n);
        std::fs::write(&path, &prefix).unwrap();
        thread::sleep(Duration::from_millis(60));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(rest.as_bytes()).unwrap();
        drop(file);
        let expected = attempts(&[("a", n), ("b", n), ("c", n)]);
        assert!(
            until(Duration::from_secs(3), || record.last()
                == Some(expected.clone()))
            .is_some(),
            "version {n} was not applied within 3 s: {:?}",
            record.all()
        );
    }
    let delivered = record.all();
    let prefixes = delivered
        .iter()
        .filter(|d| d.as_ref().is_ok_and(|p| p.len() < 3));
    assert_eq!(prefixes.count(), 0, "{delivered:?}");
    assert_eq!(delivered.len(), 20, "one reload per version: {delivered:?}");
    drop(watcher);
}

/// Removing a policy on purpose still applies, once the file has held still (300 ms).
#[test]
fn a_removed_policy_applies_once_the_file_holds_still() {
    let (_dir, path) = policy_file(&policies(&[("a", 1), ("b", 1)]));
    let record = Record::default();
    let watcher = start(&path, &record);

    std::fs::write(&path, policies(&[("a", 1)])).unwrap();
    let took = until(Duration::from_secs(2), || record.len() == 1)
        .expect("the removal was not applied within 2 s");
    assert_eq!(record.last().unwrap(), attempts(&[("a", 1)]));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(1),
        "took {took:?}"
    );
    drop(watcher);
}

#[test]
fn a_file_without_policies_is_refused_unless_allowed() {
    let (dir, path) = policy_file(&policies(&[("a", 1), ("b", 1)]));
    let record = Record::default();
    let watcher = start(&path, &record);

    for (n, empty) in ["policies:\n", "policies: {}\n"].into_iter().enumerate() {
        std::fs::write(&path, empty).unwrap();
        assert!(
            until(Duration::from_secs(2), || record.len() == n + 1).is_some(),
            "`{empty}` was not refused within 2 s"
        );
        let refused = record.last().unwrap().unwrap_err();
        assert!(
            refused.ends_with(
                "policies.yaml: the file has no policies; reloading it would remove all 2 policies in force; keep at least one policy (an unused name with no sections will do), or watch with `WatchOptions::allow_empty(true)`"
            ),
            "{refused}"
        );
    }
    // The first file's policies stayed in force; written again, they are applied again.
    std::fs::write(&path, policies(&[("a", 1), ("b", 1)])).unwrap();
    assert!(until(Duration::from_secs(2), || record.len() == 3).is_some());
    assert_eq!(record.last().unwrap(), attempts(&[("a", 1), ("b", 1)]));
    drop(watcher);

    let allowed = Record::default();
    let path = dir.path().join("allowed.yaml");
    std::fs::write(&path, policies(&[("a", 1)])).unwrap();
    let (_, watcher) = {
        let allowed = allowed.clone();
        watch_with(
            &path,
            WatchOptions::new().allow_empty(true),
            move |reload| allowed.push(reload),
        )
        .unwrap()
    };
    std::fs::write(&path, "policies: {}\n").unwrap();
    assert!(until(Duration::from_secs(2), || allowed.len() == 1).is_some());
    assert_eq!(allowed.last().unwrap(), Ok(BTreeMap::new()));
    drop(watcher);
}
