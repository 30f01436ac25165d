//! Test cases out of a JUnit XML report, as pytest, cargo nextest,
//! go-junit-report, jest-junit and Maven Surefire write them.

use std::collections::HashMap;
use std::fmt;

/// How a test case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed {
        /// It failed first and passed on a retry (`flakyFailure`).
        flaky: bool,
    },
    /// `<failure>`: an assertion did not hold.
    Failed(Problem),
    /// `<error>`: the test could not run or threw unexpectedly.
    Errored(Problem),
    Skipped,
}

/// What a `<failure>` or `<error>` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// One line: the `message` attribute, or the text's first line.
    pub message: Option<String>,
    /// The full text (a traceback or stack), then the case's system-err.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The innermost `<testsuite name>`.
    pub suite: String,
    pub classname: String,
    pub name: String,
    /// The `file` attribute (pytest's xunit1, Surefire with some plugins).
    pub file: Option<String>,
    /// The `line` attribute, as the runner wrote it (pytest's xunit1 writes
    /// the 0-based line of the `def`; most others the 1-based line): see
    /// [`Case::source_line`].
    pub line: Option<u32>,
    pub seconds: f64,
    /// When the report was written, in milliseconds since the Unix epoch:
    /// not in the XML, the reader of the file sets it (its modification time).
    pub reported_at_ms: Option<u64>,
    pub outcome: Outcome,
}

impl Case {
    /// The case's stable id, from which its alert key is derived. For
    /// pytest's xunit1 reports, which carry the file, it is pytest's own
    /// nodeid, so the keys match the plugin's for the same test.
    pub fn id(&self) -> String {
        if let Some(nodeid) = self.pytest_nodeid() {
            return nodeid;
        }
        // jest-junit repeats the name as the class name by default.
        let class_is_name = self.classname.is_empty() || self.classname == self.name;
        match (class_is_name, self.suite.is_empty()) {
            (false, _) => format!("{}::{}", self.classname, self.name),
            (true, false) => format!("{}::{}", self.suite, self.name),
            (true, true) => self.name.clone(),
        }
    }

    /// The 1-based line of the test, for a link to its source: the `line`
    /// attribute, plus one for pytest's xunit1 (pytest's `item.location`,
    /// 0-based), as written for every other runner.
    pub fn source_line(&self) -> Option<u32> {
        let line = self.line?;
        Some(match self.pytest_nodeid() {
            Some(_) => line.saturating_add(1),
            None => line,
        })
    }

    /// Whether the case failed or errored.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_) | Outcome::Errored(_))
    }

    fn pytest_nodeid(&self) -> Option<String> {
        let file = self.file.as_deref()?.strip_suffix(".py")?;
        let module = file.replace('/', ".");
        let classes = self.classname.strip_prefix(&module)?;
        let mut nodeid = format!("{file}.py");
        for class in classes.split('.').filter(|c| !c.is_empty()) {
            nodeid.push_str("::");
            nodeid.push_str(class);
        }
        Some(format!("{nodeid}::{}", self.name))
    }
}

/// One case per id, in the order each id first appears, for a run whose
/// reports name a case more than once (two matrix legs, a runner's reruns,
/// pytest's `--dist each`): a failure anywhere wins (the first, with its
/// text), else a pass, else the first as it is (a skip).
pub fn per_case(cases: Vec<Case>) -> Vec<Case> {
    let rank = |case: &Case| match case.outcome {
        Outcome::Failed(_) | Outcome::Errored(_) => 2,
        Outcome::Passed { .. } => 1,
        Outcome::Skipped => 0,
    };
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut kept: Vec<Case> = Vec::new();
    for case in cases {
        match at.get(&case.id()) {
            Some(&i) if rank(&case) > rank(&kept[i]) => kept[i] = case,
            Some(_) => {}
            None => {
                at.insert(case.id(), kept.len());
                kept.push(case);
            }
        }
    }
    kept
}

/// A `time` attribute: "1.5", "1,234.5" (old Surefire's thousands), "0,5"
/// (a decimal comma); anything else, negative or not finite counts as 0.
fn seconds(time: &str) -> f64 {
    let time = if time.contains('.') {
        time.replace(',', "")
    } else {
        time.replace(',', ".")
    };
    time.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .unwrap_or(0.0)
}

#[derive(Debug)]
pub struct ReportError(pub String);

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReportError {}

/// Deeper than any runner nests suites; the XML parser recurses per level,
/// so a deeper (broken or hostile) file would overflow the stack.
const MAX_DEPTH: usize = 256;

/// How deep the elements nest, skipping comments, CDATA, declarations and
/// quoted attribute values.
fn depth(xml: &str) -> usize {
    let bytes = xml.as_bytes();
    let find = |from: usize, what: &str| {
        xml.get(from..)
            .and_then(|rest| rest.find(what))
            .map_or(bytes.len(), |at| from + at + what.len())
    };
    let (mut at, mut depth, mut deepest) = (0, 0usize, 0);
    while let Some(offset) = xml.get(at..).and_then(|rest| rest.find('<')) {
        let start = at + offset;
        let rest = &xml[start..];
        at = if rest.starts_with("<!--") {
            find(start, "-->")
        } else if rest.starts_with("<![CDATA[") {
            find(start, "]]>")
        } else if rest.starts_with("<?") || rest.starts_with("<!") {
            find(start, ">")
        } else if rest.starts_with("</") {
            depth = depth.saturating_sub(1);
            find(start, ">")
        } else {
            let mut quote = None;
            let mut end = start + 1;
            while end < bytes.len() {
                match (quote, bytes[end]) {
                    (None, b'"' | b'\'') => quote = Some(bytes[end]),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => break,
                    _ => {}
                }
                end += 1;
            }
            if bytes.get(end.wrapping_sub(1)) != Some(&b'/') {
                depth += 1;
                deepest = deepest.max(depth);
            }
            end + 1
        };
    }
    deepest
}

/// Every test case in the report, in document order.
pub fn parse(xml: &str) -> Result<Vec<Case>, ReportError> {
    let deepest = depth(xml);
    if deepest > MAX_DEPTH {
        return Err(ReportError(format!(
            "elements nest {deepest} levels deep (at most {MAX_DEPTH}): not a JUnit report"
        )));
    }
    let document = roxmltree::Document::parse(xml)
        .map_err(|e| ReportError(format!("not well-formed XML: {e}")))?;
    let root = document.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(ReportError(format!(
            "the root element is <{}>, not <testsuites> or <testsuite>: not a JUnit report",
            root.tag_name().name()
        )));
    }
    Ok(root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(case)
        .collect())
}

fn case(node: roxmltree::Node) -> Case {
    let suite = node
        .ancestors()
        .find(|a| a.has_tag_name("testsuite"))
        .and_then(|s| s.attribute("name"))
        .unwrap_or_default();
    let child = |name: &str| node.children().find(|c| c.has_tag_name(name));
    let system_err = child("system-err").and_then(|e| e.text()).unwrap_or("");
    let problem = |element: roxmltree::Node| {
        let text = element.text().unwrap_or("").trim_end();
        let first_line = text.lines().map(str::trim).find(|l| !l.is_empty());
        // go-junit-report's message is only "Failed": the text says more.
        let says_nothing = |m: &&str| m.is_empty() || m.eq_ignore_ascii_case("failed");
        let message = element
            .attribute("message")
            .map(str::trim)
            .filter(|m| !says_nothing(m))
            .or(first_line)
            .map(str::to_string);
        let mut text = text.to_string();
        if !system_err.trim().is_empty() {
            text.push_str("\n\n--- stderr ---\n");
            text.push_str(system_err.trim_end());
        }
        Problem { message, text }
    };
    let outcome = if let Some(failure) = child("failure") {
        Outcome::Failed(problem(failure))
    } else if let Some(error) = child("error") {
        Outcome::Errored(problem(error))
    } else if child("skipped").is_some() {
        Outcome::Skipped
    } else {
        Outcome::Passed {
            flaky: child("flakyFailure").is_some() || child("flakyError").is_some(),
        }
    };
    Case {
        suite: suite.to_string(),
        classname: node.attribute("classname").unwrap_or_default().to_string(),
        name: node.attribute("name").unwrap_or_default().to_string(),
        file: node.attribute("file").map(str::to_string),
        line: node.attribute("line").and_then(|l| l.trim().parse().ok()),
        seconds: node.attribute("time").map_or(0.0, seconds),
        reported_at_ms: None,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_outcomes_messages_and_nesting() {
        let cases = parse(
            r#"<testsuites><testsuite name="outer"><testsuite name="inner">
                <testcase classname="a.B" name="ok" time="1.5"/>
                <testcase classname="a.B" name="bad"><failure message="boom &lt;x&gt;">trace</failure><system-err>log</system-err></testcase>
                <testcase classname="a.B" name="err"><error>Oops: first line
second</error></testcase>
                <testcase classname="a.B" name="skip"><skipped/></testcase>
                <testcase classname="a.B" name="retried"><flakyFailure message="once"/></testcase>
            </testsuite></testsuite></testsuites>"#,
        )
        .unwrap();
        assert_eq!(cases.len(), 5);
        assert_eq!(cases[0].suite, "inner");
        assert_eq!(cases[0].seconds, 1.5);
        assert_eq!(cases[0].outcome, Outcome::Passed { flaky: false });
        assert_eq!(
            cases[1].outcome,
            Outcome::Failed(Problem {
                message: Some("boom <x>".into()),
                text: "trace\n\n--- stderr ---\nlog".into()
            })
        );
        match &cases[2].outcome {
            Outcome::Errored(p) => assert_eq!(p.message.as_deref(), Some("Oops: first line")),
            other => panic!("{other:?}"),
        }
        assert_eq!(cases[3].outcome, Outcome::Skipped);
        assert_eq!(cases[4].outcome, Outcome::Passed { flaky: true });
        assert_eq!((cases[0].file.as_deref(), cases[0].line), (None, None));
    }

    #[test]
    fn file_and_line_are_read_as_written() {
        let cases = parse(
            r#"<testsuite name="s">
                <testcase classname="c" name="a" file="src/shop/a_test.go" line="42"/>
                <testcase classname="c" name="b" file="b.py" line="soon"/>
            </testsuite>"#,
        )
        .unwrap();
        assert_eq!(cases[0].file.as_deref(), Some("src/shop/a_test.go"));
        assert_eq!(cases[0].line, Some(42));
        assert_eq!(
            (cases[1].file.as_deref(), cases[1].line),
            (Some("b.py"), None)
        );
        assert_eq!(cases[0].reported_at_ms, None);
    }

    #[test]
    fn a_pytest_xunit1_case_gets_pytests_nodeid() {
        let case = |classname: &str, file: Option<&str>| Case {
            suite: "pytest".into(),
            classname: classname.into(),
            name: "test_x".into(),
            file: file.map(str::to_string),
            line: None,
            seconds: 0.0,
            reported_at_ms: None,
            outcome: Outcome::Skipped,
        };
        let in_class = case("tests.test_shop.TestCart", Some("tests/test_shop.py"));
        assert_eq!(in_class.id(), "tests/test_shop.py::TestCart::test_x");
        assert_eq!(
            case("tests.test_shop", Some("tests/test_shop.py")).id(),
            "tests/test_shop.py::test_x"
        );
        assert_eq!(
            case("tests.test_shop", None).id(),
            "tests.test_shop::test_x"
        );
        assert_eq!(case("", None).id(), "pytest::test_x");
    }

    #[test]
    fn a_source_line_is_1_based_pytest_xunit1s_0_based_line_plus_one() {
        let cases = parse(
            r#"<testsuite name="pytest">
                <testcase classname="tests.test_shop" name="test_a" file="tests/test_shop.py" line="16"/>
                <testcase classname="tests.test_shop" name="test_b" file="tests/test_shop.py"/>
                <testcase classname="shop/checkout" name="TestRefund" file="checkout/refund_test.go" line="42"/>
                <testcase classname="elsewhere" name="test_c" file="tests/test_shop.py" line="7"/>
            </testsuite>"#,
        )
        .unwrap();
        let lines: Vec<_> = cases.iter().map(Case::source_line).collect();
        // Only a case read as pytest's xunit1 (its nodeid rebuilt) is moved.
        assert_eq!(lines, [Some(17), None, Some(42), Some(7)]);
        assert_eq!(cases[0].line, Some(16));
    }

    #[test]
    fn a_case_named_twice_is_one_case_a_failure_anywhere_winning() {
        let cases = parse(
            r#"<testsuites><testsuite name="s">
                <testcase classname="c" name="a"/>
                <testcase classname="c" name="b"><skipped/></testcase>
                <testcase classname="c" name="a"><failure message="first"/></testcase>
                <testcase classname="c" name="a"><error message="second"/></testcase>
                <testcase classname="c" name="b"/>
                <testcase classname="c" name="d"><skipped/></testcase>
                <testcase classname="c" name="d"><skipped/></testcase>
            </testsuite></testsuites>"#,
        )
        .unwrap();
        let kept = per_case(cases);
        let ids: Vec<_> = kept.iter().map(Case::id).collect();
        assert_eq!(ids, ["c::a", "c::b", "c::d"]);
        match &kept[0].outcome {
            Outcome::Failed(p) => assert_eq!(p.message.as_deref(), Some("first")),
            other => panic!("{other:?}"),
        }
        assert_eq!(kept[1].outcome, Outcome::Passed { flaky: false });
        assert_eq!(kept[2].outcome, Outcome::Skipped);
    }

    #[test]
    fn times_in_any_runners_format_and_nonsense_as_zero() {
        assert_eq!(seconds("1.5"), 1.5);
        assert_eq!(seconds("1,234.5"), 1234.5);
        assert_eq!(seconds("0,5"), 0.5);
        for nonsense in ["NaN", "inf", "1e400", "-3", "soon"] {
            assert_eq!(seconds(nonsense), 0.0, "{nonsense}");
        }
    }

    #[test]
    fn depth_skips_comments_cdata_and_quoted_brackets() {
        let xml = r#"<?xml version="1.0"?><!-- <a><b> --><testsuites><testsuite name="a>b/">
            <testcase name="x"/><testcase name="y"><failure><![CDATA[<c><d><e>]]></failure></testcase>
            </testsuite></testsuites>"#;
        assert_eq!(depth(xml), 4);
        let deep = "<testsuite>".repeat(5000);
        assert!(parse(&deep)
            .unwrap_err()
            .0
            .contains("nest 5000 levels deep"));
    }

    #[test]
    fn other_xml_is_refused_with_the_reason() {
        assert!(parse("<html/>")
            .unwrap_err()
            .0
            .contains("not a JUnit report"));
        assert!(parse("<testsuite>")
            .unwrap_err()
            .0
            .contains("not well-formed"));
    }
}
