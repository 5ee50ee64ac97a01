//! The budget of one policy file: its size, the nesting of its `[ ]` / `{ }` collections, and
//! the values it expands to through aliases.
//!
//! The size and the nesting are checked on the text, before the YAML parser sees it: libyaml
//! (under serde_yaml) checks every open flow collection at every token, so a document nested
//! 100,000 deep took two minutes to *parse*, whatever was done with it afterwards. Aliases are
//! counted while the document is read (`validate::Pass::count`), where serde_yaml expands them.

/// The largest policy file read, in bytes. A policy file is a few kilobytes; this leaves room
/// for about a thousand policies, and keeps a load (refused or not) within a few megabytes:
/// the parser holds about 50 bytes per byte of text.
pub const MAX_DOCUMENT_BYTES: usize = 128 * 1024;

/// The deepest nesting of flow collections (`[ ]`, `{ }`) in a policy file. A policy needs
/// two (`retry: { on: [...] }`).
pub const MAX_FLOW_DEPTH: usize = 32;

/// The most values (scalars, lists and mappings) a policy file may expand to once its aliases
/// are replaced by what their anchors name. A file without aliases stays far below it: its
/// size limit allows about 60,000 values.
pub const MAX_VALUES: usize = 100_000;

/// A limit the text passes, and where.
#[derive(Debug)]
pub(crate) struct Exceeded {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
    pub(crate) hint: String,
}

/// Checks the size and the flow nesting of `text` in one pass over its bytes.
///
/// The scan follows YAML's lexical rules far enough to tell structure from text: comments,
/// quoted scalars (a quote that starts a token) and block scalars (`|`, `>`) are not
/// structure. Inside a block scalar, whose end it can only estimate, an opening bracket still
/// counts and a closing one does not, so an estimate errs towards refusing.
pub(crate) fn check(text: &str) -> Result<(), Exceeded> {
    if text.len() > MAX_DOCUMENT_BYTES {
        let mut at = MAX_DOCUMENT_BYTES;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let (line, column) = place(text, at);
        return Err(Exceeded {
            line,
            column,
            message: format!(
                "the file is {} bytes, over the limit of {MAX_DOCUMENT_BYTES} bytes (128 KiB)",
                text.len()
            ),
            hint: "a policy file is a few kilobytes: split it, or keep only the policies this service names".to_string(),
        });
    }
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    // The indentation of the line a block scalar's indicator is on: its content is every
    // following line that is blank or indented further.
    let mut block_scalar: Option<usize> = None;
    let mut line_start = 0;
    // The last byte of the line that is not a space or a tab (0 at the line's start), whether
    // blanks followed it, and the first byte of the last blank-separated word (an anchor or a
    // tag is followed by a token).
    let mut last = 0u8;
    let mut blank_after_last = false;
    let mut word_first = 0u8;
    while i < bytes.len() {
        let byte = bytes[i];
        if i == line_start {
            let indent = bytes[i..]
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            let rest = bytes[i + indent..].first().copied();
            let blank = matches!(rest, None | Some(b'\n' | b'\r'));
            if let Some(indicator_indent) = block_scalar {
                if blank || indent > indicator_indent {
                    // Content: text to the parser, so only opening brackets count.
                    let end = line_end(bytes, i);
                    for &b in &bytes[i..end] {
                        if b == b'[' || b == b'{' {
                            depth += 1;
                            if depth > MAX_FLOW_DEPTH {
                                return Err(too_deep(text, i));
                            }
                        }
                    }
                    i = end + 1;
                    line_start = i;
                    continue;
                }
                block_scalar = None;
            }
            last = 0;
            blank_after_last = false;
            word_first = 0;
        }
        match byte {
            b'\n' => {
                i += 1;
                line_start = i;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                blank_after_last = last != 0;
                i += 1;
                continue;
            }
            _ => {}
        }
        let token_start = last == 0
            || matches!(last, b'[' | b'{' | b',')
            || (matches!(last, b':' | b'-' | b'?') && (blank_after_last || depth > 0))
            || (blank_after_last && matches!(word_first, b'&' | b'!'));
        match byte {
            b'#' if last == 0 || blank_after_last || token_start => {
                i = line_end(bytes, i);
                continue;
            }
            b'\'' | b'"' if token_start => {
                i = quoted_end(bytes, i);
                last = byte;
                blank_after_last = false;
                continue;
            }
            b'|' | b'>' if token_start && depth == 0 => {
                let line_indent = bytes[line_start..]
                    .iter()
                    .take_while(|b| **b == b' ')
                    .count();
                block_scalar = Some(line_indent);
                i = line_end(bytes, i);
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(too_deep(text, i));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if last == 0 || blank_after_last || matches!(last, b'[' | b'{' | b',') {
            word_first = byte;
        }
        last = byte;
        blank_after_last = false;
        i += 1;
    }
    Ok(())
}

fn too_deep(text: &str, at: usize) -> Exceeded {
    let (line, column) = place(text, at);
    Exceeded {
        line,
        column,
        message: format!(
            "collections nested more than {MAX_FLOW_DEPTH} deep (`[ ]`, `{{ }}`), the limit of a policy file"
        ),
        hint: "a policy needs two levels: `retry: { on: [...] }`".to_string(),
    }
}

/// The index of the line break ending the line that holds `at` (or the text's length).
fn line_end(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |n| at + n)
}

/// The index just past the quoted scalar that starts at `at`: `''` escapes a single quote,
/// a backslash escapes any byte in double quotes. An unclosed quote runs to the end (the parser
/// refuses it).
fn quoted_end(bytes: &[u8], at: usize) -> usize {
    let quote = bytes[at];
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The line and column (from 1, in characters) of byte `at` of `text`.
pub(crate) fn place(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (line, before[start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(text: &str) -> Option<(usize, usize)> {
        check(text).err().map(|error| (error.line, error.column))
    }

    #[test]
    fn nesting_is_counted_in_structure_only() {
        let deep = format!("a: {}{}\n", "[".repeat(33), "]".repeat(33));
        assert_eq!(depth_error(&deep), Some((1, 36)));
        let at_limit = format!("a: {}{}\n", "[".repeat(32), "]".repeat(32));
        assert_eq!(depth_error(&at_limit), None);
        let quoted = format!("a: '{}'\nb: \"{}\\\"\"\n", "[".repeat(40), "{".repeat(40));
        assert_eq!(depth_error(&quoted), None);
        let commented = format!("a: 1 # {}\n", "[".repeat(40));
        assert_eq!(depth_error(&commented), None);
        // Sequential collections do not add up.
        let wide = "a: [1]\n".repeat(100);
        assert_eq!(depth_error(&wide), None);
        // A quote inside a plain scalar is text: what follows is still structure.
        let apostrophe = format!("a: don't\nb: {}\n", "[".repeat(33));
        assert_eq!(depth_error(&apostrophe), Some((2, 36)));
        // A closing bracket in a string does not hide an opening one.
        let hidden = format!("a: {}1\n", "[ \"]\", ".repeat(33));
        assert!(depth_error(&hidden).is_some());
    }

    #[test]
    fn a_block_scalar_is_text_until_a_line_is_indented_less() {
        let text = format!("a: |\n  it's [[[\n  ]]]\nb: {}\n", "[".repeat(30));
        // The three in the block scalar count (its end is estimated), its closers do not.
        assert_eq!(depth_error(&text), Some((4, 33)));
        let text = format!("a: |\n  it's\nb: {}1{}\n", "[".repeat(20), "]".repeat(20));
        assert_eq!(depth_error(&text), None);
    }

    #[test]
    fn the_size_is_capped() {
        let text = "#".repeat(MAX_DOCUMENT_BYTES + 1);
        let error = check(&text).expect_err("too large");
        assert_eq!((error.line, error.column), (1, MAX_DOCUMENT_BYTES + 1));
        assert!(check(&"#".repeat(MAX_DOCUMENT_BYTES)).is_ok());
    }
}
