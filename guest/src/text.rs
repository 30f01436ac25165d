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

/// Keeps the first `max` characters, ending with an ellipsis when cut.
pub fn truncate_end(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(max.saturating_sub(1)).collect();
    kept.push(ELLIPSIS);
    kept
}

/// Keeps the last `max` characters, saying how much was cut; the end of a
/// traceback is where the assertion is.
pub fn truncate_start(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let notice = format!("{ELLIPSIS} [{} characters cut] ", total - max);
    let keep = max.saturating_sub(notice.chars().count());
    let tail: String = text.chars().skip(total - keep).collect();
    format!("{notice}{tail}")
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
    fn truncate_start_keeps_the_tail_and_says_how_much_was_cut() {
        let text = "x".repeat(100) + "assert 1 == 2";
        let cut = truncate_start(&text, 40);
        assert_eq!(cut.chars().count(), 40);
        assert!(cut.ends_with("assert 1 == 2"));
        assert!(cut.starts_with("… [73 characters cut] "));
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
