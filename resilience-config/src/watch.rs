//! Hot reload: a thread that reads the file again when it changes.
//!
//! What counts as a change is the file's content, read through any symlinks, differing from
//! the last content read. That one rule covers an in-place write, an editor's atomic rename,
//! and a Kubernetes ConfigMap's `..data` symlink swap alike. The thread wakes on the
//! directory's change events (`notify`, watching the file's directory and its target's), and
//! every half second regardless, in case events are not delivered (some network and overlay
//! file systems).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

use crate::error::ConfigErrors;
use crate::load::read;
use crate::schema::PolicyFile;

/// How often the file is read without an event.
const POLL: Duration = Duration::from_millis(500);

/// How long events are gathered after the first one: a writer's several writes are one change.
const SETTLE: Duration = Duration::from_millis(25);

/// What a reload found: new checked policies, or every problem of the new content (the
/// previous policies stay in force).
pub type Reload = Result<PolicyFile, ConfigErrors>;

/// Watches a policy file; dropping it stops watching (and waits for the thread to end).
#[derive(Debug)]
pub struct Watcher {
    stop: Option<mpsc::Sender<Wake>>,
    thread: Option<JoinHandle<()>>,
    events: Option<notify::RecommendedWatcher>,
    path: PathBuf,
}

enum Wake {
    Changed,
    Stop,
}

impl Watcher {
    /// The file being watched.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.events.take();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Wake::Stop);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads the file at `path` now (an invalid file is an error here, before anything runs), then
/// calls `on_reload` on a thread of its own with each changed content's result, until the
/// returned [`Watcher`] is dropped.
pub fn watch(
    path: impl AsRef<Path>,
    mut on_reload: impl FnMut(Reload) + Send + 'static,
) -> Result<(PolicyFile, Watcher), ConfigErrors> {
    let path = path.as_ref().to_path_buf();
    let text = read(&path)?;
    let first = crate::validate::parse(&text, Some(&path))?;
    let (wake, woken) = mpsc::channel();
    let events = watch_directories(&path, wake.clone());
    let thread = {
        let path = path.clone();
        std::thread::Builder::new()
            .name("resilience-config-watch".to_string())
            .spawn(move || {
                let mut last = text;
                let mut unreadable = false;
                loop {
                    let by_event = match woken.recv_timeout(POLL) {
                        Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Ok(Wake::Changed) => true,
                        Err(RecvTimeoutError::Timeout) => false,
                    };
                    if by_event && settle(&woken) {
                        return;
                    }
                    match read(&path) {
                        Ok(text) if text == last => unreadable = false,
                        Ok(text) => {
                            unreadable = false;
                            let reload = crate::validate::parse(&text, Some(&path));
                            last = text;
                            on_reload(reload);
                        }
                        // Mid-swap the file can be briefly missing: only a file still missing
                        // at a quiet poll is reported, once.
                        Err(errors) if !by_event && !unreadable => {
                            unreadable = true;
                            on_reload(Err(errors));
                        }
                        Err(_) => {}
                    }
                }
            })
    };
    let thread = match thread {
        Ok(thread) => thread,
        Err(error) => {
            return Err(ConfigErrors::new(vec![crate::error::ConfigError {
                file: Some(path),
                line: 0,
                column: 0,
                path: String::new(),
                message: format!("cannot start the watching thread: {error}"),
                hint: None,
            }]));
        }
    };
    Ok((
        first,
        Watcher {
            stop: Some(wake),
            thread: Some(thread),
            events,
            path,
        },
    ))
}

/// Waits until events stop arriving for [`SETTLE`]; `true` when told to stop meanwhile.
fn settle(woken: &mpsc::Receiver<Wake>) -> bool {
    loop {
        match woken.recv_timeout(SETTLE) {
            Ok(Wake::Changed) => {}
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) => return false,
        }
    }
}

/// Change events of the file's directory and of its symlink target's directory. `None` when
/// the platform refuses (too many watches): polling alone still reloads.
fn watch_directories(path: &Path, wake: mpsc::Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = wake.send(Wake::Changed);
        }
    })
    .ok()?;
    let mut directories = vec![directory(path)];
    if let Ok(target) = std::fs::canonicalize(path) {
        let target = directory(&target);
        if !directories.contains(&target) {
            directories.push(target);
        }
    }
    for directory in directories {
        let _ = watcher.watch(&directory, RecursiveMode::NonRecursive);
    }
    Some(watcher)
}

fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
