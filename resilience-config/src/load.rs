//! Reading a policy file once.

use std::io::Read as _;
use std::path::Path;

use crate::error::{ConfigError, ConfigErrors};
use crate::schema::PolicyFile;

/// The largest policy file read, in bytes: the document limit
/// ([`MAX_DOCUMENT_BYTES`](crate::MAX_DOCUMENT_BYTES)), which also keeps a path pointing at
/// something endless (`/dev/zero`, a growing log) from being read without bound.
const MAX_FILE_BYTES: u64 = crate::limits::MAX_DOCUMENT_BYTES as u64;

/// Reads and checks the policy file at `path`. Every problem is reported, each with the file,
/// line, column and dotted path of the key.
///
/// Only a regular file (through any symlinks) of at most
/// [`MAX_DOCUMENT_BYTES`](crate::MAX_DOCUMENT_BYTES) is read: a FIFO,
/// a device or a directory is refused without blocking.
pub fn load(path: impl AsRef<Path>) -> Result<PolicyFile, ConfigErrors> {
    let path = path.as_ref();
    let text = read_file(path)?;
    crate::validate::parse(&text, Some(path))
}

/// Reads and checks policies written as YAML text.
pub fn load_str(yaml: &str) -> Result<PolicyFile, ConfigErrors> {
    crate::validate::parse(yaml, None)
}

/// Checks `text`, read from the file at `path` (with [`read_file`]): [`load`] in two steps,
/// for a reader that looks at the text before checking it (the runtime's file watcher
/// compares it with the last one read). Every problem names the file.
pub fn load_text(text: &str, path: &Path) -> Result<PolicyFile, ConfigErrors> {
    crate::validate::parse(text, Some(path))
}

/// A problem with the file at `path` as a whole, placed by its path only (no line).
pub fn file_error(path: &Path, message: String, hint: Option<String>) -> ConfigErrors {
    ConfigErrors::new(vec![ConfigError {
        file: Some(path.to_path_buf()),
        line: 0,
        column: 0,
        path: String::new(),
        message,
        hint,
    }])
}

/// The text of the policy file at `path`, or why it cannot be read, as an error naming the
/// file (with no line): what [`load`] reads.
///
/// The path's metadata (symlinks followed) is checked before opening, and the opened file's
/// again after (the path may be swapped in between); the open is non-blocking, so a FIFO put
/// in the file's place can neither block the open nor the read.
pub fn read_file(path: &Path) -> Result<String, ConfigErrors> {
    let refuse = |message: String| file_error(path, message, None);
    let cannot_read = |error: std::io::Error| refuse(format!("cannot read the file: {error}"));
    regular_within_limit(&std::fs::metadata(path).map_err(cannot_read)?).map_err(&refuse)?;
    let file = open_nonblocking(path).map_err(cannot_read)?;
    regular_within_limit(&file.metadata().map_err(cannot_read)?).map_err(&refuse)?;
    let mut bytes = Vec::new();
    // One byte over the limit tells a file that grew since its metadata was read.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(refuse(format!(
            "the file grew past the {MAX_FILE_BYTES} bytes a policy file may have while it was read"
        )));
    }
    String::from_utf8(bytes).map_err(|error| {
        refuse(format!(
            "the file is not UTF-8 text (byte {})",
            error.utf8_error().valid_up_to()
        ))
    })
}

/// Why a file of this kind or size is not read, if it is not.
fn regular_within_limit(metadata: &std::fs::Metadata) -> Result<(), String> {
    if !metadata.is_file() {
        return Err(format!(
            "cannot read the file: it is {}, not a regular file",
            kind(metadata)
        ));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(format!(
            "the file is {} bytes, more than the {MAX_FILE_BYTES} bytes a policy file may have",
            metadata.len()
        ));
    }
    Ok(())
}

fn kind(metadata: &std::fs::Metadata) -> &'static str {
    if metadata.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let kind = metadata.file_type();
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}
