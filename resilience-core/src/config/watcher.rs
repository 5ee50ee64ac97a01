//! Hot reload: a thread that reads the file again when it changes.
//!
//! What counts as a change is the file's content, read through any symlinks, differing from
//! the last content read. That one rule covers an in-place write, an editor's atomic rename,
//! and a Kubernetes ConfigMap's `..data` symlink swap alike. The thread wakes on the
//! directory's change events (`notify`, watching the file's directory and its target's), and
//! every half second regardless, in case events are not delivered (some network and overlay
//! file systems).
//!
//! When a content is read and what is applied: see [`watch_with`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher as _};

use resilience_config::{ConfigErrors, NamedPolicy, PolicyFile};
use resilience_config::{file_error as problem, read_file as read};

/// How often the file is read without an event.
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// How long the file's size, modification time and inode must stay unchanged before it is read.
pub(crate) const SETTLE: Duration = Duration::from_millis(25);

/// How long after its last write a file still open for writing is waited for.
pub(crate) const HELD: Duration = Duration::from_secs(1);

/// How long a content that removes policies must stay unchanged before it is applied.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// How long dropping a [`Watcher`] waits for its thread.
pub(crate) const DROP_WAIT: Duration = Duration::from_millis(250);

/// Whether the platform's events report a writer closing the file.
const REPORTS_CLOSE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Settle rounds before a file that keeps changing is left to the next wake (about a second).
const SETTLE_ROUNDS: u32 = 40;

/// Events taken within one settle round; past it the round ends early (a storm of events).
const EVENTS_PER_ROUND: u32 = 10_000;

/// What a reload found: new checked policies, or every problem of the new content (the
/// previous policies stay in force).
pub(crate) type Reload = Result<PolicyFile, ConfigErrors>;

/// What a watch accepts beyond a valid file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchOptions {
    allow_empty: bool,
}

impl WatchOptions {
    /// The defaults: a reload that would remove every policy in force is refused.
    pub fn new() -> Self {
        WatchOptions::default()
    }

    /// Whether a reload may remove every policy in force (`policies:` or `policies: {}`),
    /// returning every site to its inline values. Off by default: an empty file is far more
    /// often a truncated or mistaken edit than an intent. Without this option an operator
    /// removes the last real policy by leaving a placeholder (`policies: { none: {} }`).
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }
}

/// Watches a policy file; dropping it stops watching. The drop waits at most 250 ms for the
/// thread, so it never hangs: once it returns no reload starts, unless `on_reload` was still
/// running after that wait.
#[derive(Debug)]
pub(crate) struct Watcher {
    stopped: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<Wake>>,
    ended: Option<mpsc::Receiver<()>>,
    thread: Option<JoinHandle<()>>,
    events: Option<notify::RecommendedWatcher>,
}

enum Wake {
    Touched(Touch),
    Stop,
}

/// What an event says about the watched file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    /// Data written to the file by a writer that may still hold it open.
    Written,
    /// A writer closed the file.
    Closed,
    /// The file was created, renamed or removed: whatever was written to it is complete.
    Replaced,
    /// Something else in a watched directory.
    Other,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.events.take();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Wake::Stop);
        }
        let ended = self.ended.take().map(|ended| ended.recv_timeout(DROP_WAIT));
        if let Some(thread) = self.thread.take() {
            // The thread's end drops its sender: join only a thread that has ended, so the
            // drop never waits on a callback that hangs. Otherwise it is detached; it sees
            // `stopped` before any further reload.
            if let Some(Err(RecvTimeoutError::Disconnected)) = ended {
                let _ = thread.join();
            }
        }
    }
}

/// Reads the file at `path` now (an invalid file is an error here, before anything runs), then
/// calls `on_reload` on a thread of its own with each changed content's result, until the
/// returned [`Watcher`] is dropped. The same as [`watch_with`] and the default options.
#[cfg(test)]
pub(crate) fn watch(
    path: impl AsRef<Path>,
    on_reload: impl FnMut(Reload) + Send + 'static,
) -> Result<(PolicyFile, Watcher), ConfigErrors> {
    watch_with(path, WatchOptions::default(), on_reload)
}

/// [`watch`] with options.
///
/// When a content is read, and what is applied:
///
/// - **Settled on the file itself.** After a wake the file's metadata (size, modification time,
///   inode; symlinks followed) must be unchanged across 25 ms before it is read, and again
///   after the read. Events of other files in the directory (a log written every 10 ms) wake
///   the thread but never delay a reload.
/// - **Written in place: after the writer closes it.** A data write to the file seen without
///   the writer's close since (Linux reports both) holds the reload until the close, or until
///   1 s after the last write for a writer that keeps the file open.
/// - **A content that removes policies waits.** A parse that lacks a policy in force (what a
///   half-written file looks like) is applied only once the file has stayed unchanged for
///   300 ms; a writer that finishes before then is never seen half-way.
/// - **Not every policy at once.** A file with no policies while some are in force
///   (`policies:`, `policies: {}`) is refused unless [`WatchOptions::allow_empty`] asks for it.
/// - **Panics are contained.** A panic while reading, parsing or applying (in `on_reload`) is
///   reported to `on_reload` as a failed reload, and the thread keeps watching. A content
///   that panicked is not read again until it changes.
/// - **Only regular files, up to [`MAX_DOCUMENT_BYTES`](resilience_config::MAX_DOCUMENT_BYTES)**, opened
///   non-blocking: a FIFO or a device in the file's place is refused, never waited on.
/// - **Dropping never hangs** (see [`Watcher`]).
pub(crate) fn watch_with(
    path: impl AsRef<Path>,
    options: WatchOptions,
    on_reload: impl FnMut(Reload) + Send + 'static,
) -> Result<(PolicyFile, Watcher), ConfigErrors> {
    let path = path.as_ref().to_path_buf();
    let text = read(&path)?;
    let first = resilience_config::load_text(&text, &path)?;
    let (wake, woken) = mpsc::channel();
    let (ended_sender, ended) = mpsc::channel::<()>();
    let stopped = Arc::new(AtomicBool::new(false));
    let events = watch_directories(&path, wake.clone());
    let mut reloader = Reloader {
        path: path.clone(),
        options,
        on_reload,
        stopped: Arc::clone(&stopped),
        last: text,
        in_force: first.policies.clone(),
        unreadable: None,
        writing: None,
        removing: None,
    };
    let thread = std::thread::Builder::new()
        .name("resilience-config-watch".to_string())
        .spawn(move || {
            let _ended = ended_sender;
            reloader.run(&woken);
        });
    let thread = match thread {
        Ok(thread) => thread,
        Err(error) => {
            return Err(problem(
                &path,
                format!("cannot start the watching thread: {error}"),
                None,
            ));
        }
    };
    Ok((
        first,
        Watcher {
            stopped,
            stop: Some(wake),
            ended: Some(ended),
            thread: Some(thread),
            events,
        },
    ))
}

/// The watch thread's state.
struct Reloader<F> {
    path: PathBuf,
    options: WatchOptions,
    on_reload: F,
    stopped: Arc<AtomicBool>,
    /// The last content handled (applied or refused): the same content is not handled twice.
    last: String,
    /// The policies last applied.
    in_force: BTreeMap<String, NamedPolicy>,
    /// Since when the file cannot be read, and the problem last reported.
    unreadable: Option<(Instant, Option<ConfigErrors>)>,
    /// The last data write seen without the writer's close since.
    writing: Option<Instant>,
    /// A content that removes policies, its file's stamp, and since when it is unchanged.
    removing: Option<(String, Option<Stamp>, Instant)>,
}

/// How a settle ended.
enum Settled {
    Stable(Option<Stamp>),
    Moving,
    Stop,
}

impl<F: FnMut(Reload)> Reloader<F> {
    fn run(&mut self, woken: &mpsc::Receiver<Wake>) {
        loop {
            let by_event = match woken.recv_timeout(self.next_wake()) {
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Wake::Touched(touch)) => {
                    self.note(touch);
                    true
                }
                Err(RecvTimeoutError::Timeout) => false,
            };
            let stamp = match self.settle(woken) {
                Settled::Stop => return,
                // Still changing after a second of settling: the next wake tries again.
                Settled::Moving => continue,
                Settled::Stable(stamp) => stamp,
            };
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            if let Some(written) = self.writing {
                if written.elapsed() < HELD {
                    continue;
                }
                self.writing = None;
            }
            // Anything in the step may panic (a parser bug, `on_reload` itself): the thread
            // survives it as a failed reload.
            let step = catch_unwind(AssertUnwindSafe(|| self.step(by_event, stamp)));
            if let Err(payload) = step {
                let reload = Err(panicked(&self.path, payload.as_ref()));
                self.deliver(reload);
            }
        }
    }

    /// How long to wait for an event before looking at the file anyway.
    fn next_wake(&self) -> Duration {
        let mut wake = POLL;
        if let Some(written) = self.writing {
            wake = wake.min(HELD.saturating_sub(written.elapsed()));
        }
        if let Some((_, _, since)) = &self.removing {
            wake = wake.min(QUIET.saturating_sub(since.elapsed()));
        }
        wake
    }

    fn note(&mut self, touch: Touch) {
        match touch {
            Touch::Written => self.writing = Some(Instant::now()),
            Touch::Closed | Touch::Replaced => self.writing = None,
            Touch::Other => {}
        }
    }

    /// Waits until the file's stamp stays the same across [`SETTLE`], noting the events that
    /// arrive meanwhile.
    fn settle(&mut self, woken: &mpsc::Receiver<Wake>) -> Settled {
        let mut before = stamp(&self.path);
        for _ in 0..SETTLE_ROUNDS {
            let until = Instant::now() + SETTLE;
            for _ in 0..EVENTS_PER_ROUND {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match woken.recv_timeout(left) {
                    Ok(Wake::Touched(touch)) => self.note(touch),
                    Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return Settled::Stop,
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            let after = stamp(&self.path);
            if after == before {
                return Settled::Stable(after);
            }
            before = after;
        }
        Settled::Moving
    }

    /// Reads the settled file and handles a changed content.
    fn step(&mut self, by_event: bool, settled: Option<Stamp>) {
        let text = match read(&self.path) {
            Ok(text) => {
                self.unreadable = None;
                text
            }
            Err(errors) => {
                // Mid-swap the file can be briefly missing: a file still unreadable at a
                // quiet poll, or half a second later, is reported, each problem once.
                let now = Instant::now();
                let (since, reported) = self.unreadable.get_or_insert((now, None));
                if reported.as_ref() != Some(&errors)
                    && (!by_event || now.duration_since(*since) >= POLL)
                {
                    *reported = Some(errors.clone());
                    self.deliver(Err(errors));
                }
                return;
            }
        };
        if stamp(&self.path) != settled {
            // Written to while being read: the write's own event brings the next look.
            return;
        }
        if text == self.last {
            self.removing = None;
            return;
        }
        // Recorded before parsing, so that a content which panics is handled once.
        let previous = std::mem::replace(&mut self.last, text.clone());
        test_hook::check(&text);
        let file = match resilience_config::load_text(&text, &self.path) {
            Ok(file) => file,
            Err(errors) => {
                self.deliver(Err(errors));
                return;
            }
        };
        if file.policies.is_empty() && !self.in_force.is_empty() && !self.options.allow_empty {
            let refused = problem(
                &self.path,
                format!(
                    "the file has no policies; reloading it would remove all {} policies in force",
                    self.in_force.len()
                ),
                Some(
                    "keep at least one policy (an unused name with no sections will do), or watch with `WatchOptions::allow_empty(true)`"
                        .to_string(),
                ),
            );
            self.deliver(Err(refused));
            return;
        }
        let removes = self
            .in_force
            .keys()
            .any(|name| !file.policies.contains_key(name));
        if removes {
            match &self.removing {
                Some((pending, stamp, since))
                    if *pending == text && *stamp == settled && since.elapsed() >= QUIET => {}
                Some((pending, stamp, _)) if *pending == text && *stamp == settled => {
                    self.last = previous;
                    return;
                }
                _ => {
                    self.last = previous;
                    self.removing = Some((text, settled, Instant::now()));
                    return;
                }
            }
        }
        self.removing = None;
        let policies = file.policies.clone();
        if self.deliver(Ok(file)) {
            self.in_force = policies;
        }
    }

    /// Calls `on_reload` unless the watch was dropped; `false` when it panicked (then told as
    /// a failed reload) or was not called.
    fn deliver(&mut self, reload: Reload) -> bool {
        if self.stopped.load(Ordering::SeqCst) {
            return false;
        }
        match catch_unwind(AssertUnwindSafe(|| (self.on_reload)(reload))) {
            Ok(()) => true,
            Err(payload) => {
                let reload = Err(panicked(&self.path, payload.as_ref()));
                // A callback that panics on its own failure report too is beyond help.
                let _ = catch_unwind(AssertUnwindSafe(|| (self.on_reload)(reload)));
                false
            }
        }
    }
}

/// A panic caught in a reload, as the failed reload it is.
fn panicked(path: &Path, payload: &(dyn std::any::Any + Send)) -> ConfigErrors {
    let what = payload
        .downcast_ref::<&str>()
        .map(|message| (*message).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_string());
    problem(
        path,
        format!("the reload panicked: {what}"),
        Some("the last good policies stay in force; please report this as a bug".to_string()),
    )
}

/// What tells a changed file without reading it: size, modification time and inode, symlinks
/// followed; `None` for a file that cannot be stat'ed (missing mid-swap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: (u64, u64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt as _;
        (metadata.dev(), metadata.ino())
    };
    #[cfg(not(unix))]
    let inode = (0, 0);
    Some(Stamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        inode,
    })
}

/// Change events of the file's directory and of its symlink target's directory. `None` when
/// the platform refuses (too many watches): polling alone still reloads.
fn watch_directories(path: &Path, wake: mpsc::Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    let mut names: Vec<OsString> = path.file_name().map(OsString::from).into_iter().collect();
    let target = std::fs::canonicalize(path).ok();
    if let Some(name) = target.as_deref().and_then(Path::file_name) {
        if !names.iter().any(|known| known == name) {
            names.push(name.to_os_string());
        }
    }
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Some(touch) = event.ok().and_then(|event| touch(&event, &names)) {
            let _ = wake.send(Wake::Touched(touch));
        }
    })
    .ok()?;
    let mut directories = vec![directory(path)];
    if let Some(target) = target {
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

/// What `event` says about the file named one of `names`; `None` for what cannot change any
/// content (opens and reads, the watcher's own among them).
fn touch(event: &notify::Event, names: &[OsString]) -> Option<Touch> {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    let ours = event.paths.iter().any(|path| {
        path.file_name()
            .is_some_and(|name| names.iter().any(|known| known == name))
    });
    Some(match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) if ours => Touch::Closed,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Touch::Other,
        EventKind::Access(_) => return None,
        // Held for the close only where the writer's close is reported (inotify); elsewhere a
        // write would wait for a close that never comes.
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) if ours && REPORTS_CLOSE => {
            Touch::Written
        }
        EventKind::Modify(ModifyKind::Name(_)) | EventKind::Create(_) | EventKind::Remove(_)
            if ours =>
        {
            Touch::Replaced
        }
        _ => Touch::Other,
    })
}

fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Not part of the API: a panic injected into reloads, so that tests hold the watcher's
/// recovery without depending on a real bug.
mod test_hook {
    use super::Mutex;

    static MARKER: Mutex<Option<&'static str>> = Mutex::new(None);

    pub(super) fn set(marker: Option<&'static str>) {
        *MARKER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = marker;
    }

    /// Panics when the content holds the marker, as a parser bug would.
    pub(super) fn check(text: &str) {
        let marker = *MARKER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(marker) = marker {
            if text.contains(marker) {
                panic!("test hook: a reload of a content holding `{marker}`");
            }
        }
    }
}

/// Not part of the API (tests only): every later reload of a content that holds `marker`
/// panics inside the watch thread, where a parser bug would; `None` turns it off.
#[doc(hidden)]
pub fn __panic_in_reloads_holding(marker: Option<&'static str>) {
    test_hook::set(marker);
}

#[cfg(test)]
mod tests;
