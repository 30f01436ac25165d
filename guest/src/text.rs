//! Text shaping shared by titles and bodies: PagerDuty shows titles on one
//! line and limits sizes, and docstrings arrive indented.

/// Marks where text was cut.
const ELLIPSIS: char = '…';

/// Collapses all runs of whitespace (newlines included) to single spaces.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `items.join(separator)` through `[&str]::join`: one copy of `join` in
/// the component rather than one for `String`s too (1 KB).
pub fn join(items: &[String], separator: &str) -> String {
    items
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(separator)
}

/// Percent-encodes `value`: RFC 3986's unreserved characters pass, and `/`
/// too when `keep_slash` (a path). Spelled out, not `format!("%{b:02X}")`.
pub fn percent_encoded(value: &str, keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// Keeps the first `max` characters, ending with an ellipsis when cut: for
/// limits PagerDuty counts in characters (a title, a summary).
pub fn truncate_end(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(max.saturating_sub(1)).collect();
    kept.push(ELLIPSIS);
    kept
}

/// The longest start of `text` within `max` bytes that ends on a character.
fn head(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Keeps the first `max` UTF-8 bytes, ending with an ellipsis when cut: for
/// limits counted in bytes (a body, a payload).
pub fn cut_end(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut kept = head(text, max.saturating_sub(ELLIPSIS.len_utf8())).to_string();
    kept.push(ELLIPSIS);
    kept
}

/// Keeps the last `max` UTF-8 bytes, saying how much was cut; the end of a
/// traceback is where the assertion is.
pub fn cut_start(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    // "…" as text: a `char` argument would bring in its own formatting.
    let notice = format!("\u{2026} [{} bytes cut] ", text.len() - max);
    let mut start = text.len() - max.saturating_sub(notice.len()).min(text.len());
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{notice}{}", &text[start..])
}

/// The length of a CSI sequence's parameters and final byte.
fn csi_length(rest: &str) -> usize {
    rest.bytes()
        .position(|b| (0x40..=0x7e).contains(&b))
        .map_or(rest.len(), |at| at + 1)
}

/// The length of the terminal escape sequence at the start of `rest` (which
/// starts after its ESC): CSI `[ params final`, OSC `] text BEL|ESC \`, or
/// ESC and one character.
fn escape_length(rest: &str) -> usize {
    match rest.as_bytes().first() {
        Some(b'[') => 1 + csi_length(&rest[1..]),
        Some(b']') => match rest.bytes().position(|b| b == 0x7 || b == 0x1b) {
            Some(at)
                if rest.as_bytes()[at] == 0x1b && rest.as_bytes().get(at + 1) == Some(&b'\\') =>
            {
                at + 2
            }
            Some(at) => at + 1,
            None => rest.len(),
        },
        _ => rest.chars().next().map_or(0, char::len_utf8),
    }
}

/// Text without terminal escape sequences (pytest's colours) and NUL, which
/// PagerDuty cannot store. In `title` mode every other control character
/// goes too (whitespace ones become spaces), for a line that shows as
/// written; otherwise they stay, for JSON to escape.
pub fn printable(text: &str, title: bool) -> String {
    if !text.contains(|c: char| c.is_control()) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '\u{1b}' => rest = &rest[escape_length(rest)..],
            // C1's CSI: the same sequence in one character.
            '\u{9b}' => rest = &rest[csi_length(rest)..],
            '\0' => {}
            c if title && c.is_whitespace() => out.push(' '),
            c if title && c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Removes a docstring's common indentation and surrounding blank lines,
/// as Python's `inspect.cleandoc` does.
pub fn clean_docstring(doc: &str) -> String {
    let doc = doc.replace('\t', "        ");
    let mut lines = doc.lines();
    let first = lines.next().unwrap_or("").trim().to_string();
    let rest: Vec<&str> = lines.collect();
    let indent = rest
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = vec![first];
    out.extend(
        rest.iter()
            .map(|line| line.get(indent..).unwrap_or("").trim_end().to_string()),
    );
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    join(&out, "\n")
}

/// Replaces every occurrence of each non-empty secret.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |acc, secret| {
            acc.replace(secret, "[redacted]")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_joins_as_join_does() {
        for items in [
            vec![],
            vec!["a".to_string()],
            vec!["a".into(), "".into(), "é c".into()],
        ] {
            assert_eq!(join(&items, ", "), items.join(", "));
        }
    }

    #[test]
    fn one_line_collapses_newlines_and_runs_of_spaces() {
        assert_eq!(one_line(" a\n  b\tc "), "a b c");
    }

    #[test]
    fn truncate_end_cuts_on_characters_not_bytes() {
        assert_eq!(truncate_end("héllo wörld", 5), "héll…");
        assert_eq!(truncate_end("short", 5), "short");
    }

    #[test]
    fn cut_end_counts_bytes_and_never_splits_a_character() {
        assert_eq!(cut_end("héllo", 6), "héllo");
        assert_eq!(cut_end("héllo wörld", 7), "hél…");
        assert_eq!(cut_end("ééé", 5), "é…");
        assert_eq!(cut_end("ééé", 4), "…");
        for max in 0..20 {
            assert!(cut_end("a€b€c€d€", max).len() <= max.max(3));
        }
    }

    #[test]
    fn cut_start_keeps_the_tail_and_says_how_many_bytes_were_cut() {
        let text = "x".repeat(100) + "assert 1 == 2";
        let cut = cut_start(&text, 40);
        assert_eq!(cut.len(), 40);
        assert!(cut.ends_with("assert 1 == 2"));
        assert!(cut.starts_with("… [73 bytes cut] "));
        let wide = "€".repeat(100);
        let cut = cut_start(&wide, 50);
        assert!(cut.len() <= 50 && cut.ends_with('€'), "{cut}");
    }

    #[test]
    fn printable_drops_escapes_and_nul_and_in_titles_every_control() {
        let coloured = "\u{1b}[31mE   assert\u{1b}[0m 1\0 == 2\u{1b}]8;;https://x\u{7}link\u{1b}]8;;\u{1b}\\\u{9b}1m!";
        assert_eq!(printable(coloured, false), "E   assert 1 == 2link!");
        assert_eq!(printable("a\tb\nc\u{7}d\u{85}e\u{7f}", true), "a b cd e");
        assert_eq!(printable("a\tb\u{7}", false), "a\tb\u{7}");
        assert_eq!(printable("trailing \u{1b}[", true), "trailing ");
        assert_eq!(printable("plain", true), "plain");
    }

    #[test]
    fn clean_docstring_dedents_like_inspect_cleandoc() {
        let doc = "Validates the flow.\n\n    Steps:\n    - one\n      - nested\n    ";
        assert_eq!(
            clean_docstring(doc),
            "Validates the flow.\n\nSteps:\n- one\n  - nested"
        );
        assert_eq!(clean_docstring("\n    Only body.\n"), "Only body.");
    }

    #[test]
    fn redact_replaces_every_secret_and_ignores_empty_ones() {
        assert_eq!(
            redact("key=abc token=xyz abc", &["abc", "", "xyz"]),
            "key=[redacted] token=[redacted] [redacted]"
        );
    }
}
