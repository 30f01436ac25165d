//! Links the responder can click: the test's source at the commit that
//! failed, the CI run, and the check's runbook. Events API v2 sends them as
//! `links`; a REST incident lists them in its body.

use crate::ci::Run;
use crate::pytest_pagerduty::alerts::types::{SourceLocation, TestFailure, Variable};

/// The longest link kept, in bytes: a link cut short would lead nowhere.
pub const URL_MAX: usize = 2048;

/// The variables a source link is built from, besides each CI system's own
/// (`ci.rs`): where the repository is browsed, and where it is checked out.
pub const VARIABLES: &[&str] = &[
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_WORKSPACE",
    "CI_PROJECT_URL",
    "CI_PROJECT_DIR",
    "BITBUCKET_GIT_HTTP_ORIGIN",
    "BITBUCKET_CLONE_DIR",
    "BUILD_REPOSITORY_URI",
    "BUILD_REPOSITORY_PROVIDER",
    "BUILD_SOURCESDIRECTORY",
];

#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// Why `url` cannot be a link, or `None` when it can: `https://` (or
/// `http://` unless `https_only`), a host, no whitespace or control
/// characters, at most `URL_MAX` bytes.
pub fn url_problem(url: &str, https_only: bool) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://").filter(|_| !https_only));
    let Some(rest) = rest else {
        return Some(if https_only {
            "must be an https:// URL".to_string()
        } else {
            "must be an http(s):// URL".to_string()
        });
    };
    if url.len() > URL_MAX {
        return Some(format!("is longer than {URL_MAX} bytes"));
    }
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Some("holds spaces or control characters".to_string());
    }
    let host = &rest[..host_end(rest)];
    if host.is_empty() || host.starts_with(':') || host.contains('@') {
        return Some("names no host".to_string());
    }
    None
}

/// Where the host of a URL's `rest` (after `://`) ends: at its first `/`,
/// `?` or `#`. By bytes: a `char` pattern would bring in a searcher.
fn host_end(rest: &str) -> usize {
    rest.bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len())
}

fn get<'a>(variables: &'a [Variable], name: &str) -> Option<&'a str> {
    variables
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.value.trim())
        .filter(|v| !v.is_empty())
}

/// `/` separators, without a trailing one.
fn slashes(path: &str) -> String {
    // By bytes, not `replace('\\', "/")` and its searcher: both are ASCII,
    // so the text stays UTF-8.
    let mut bytes = path.as_bytes().to_vec();
    for b in &mut bytes {
        if *b == b'\\' {
            *b = b'/';
        }
    }
    let path = String::from_utf8(bytes).unwrap_or_default();
    path.trim_end_matches('/').to_string()
}

fn is_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    path.starts_with('/')
        || (bytes.len() > 2 && bytes[0].is_ascii_alphabetic() && &bytes[1..3] == b":/")
}

/// The file's path from the repository root: an absolute path inside the CI
/// workspace loses the workspace; a relative one is taken as from the root
/// (a JUnit `file`). `None` outside the workspace or with `..` in it.
pub fn relative_path(location: &SourceLocation, workspace: Option<&str>) -> Option<String> {
    let path = slashes(&location.path);
    let relative = if is_absolute(&path) {
        let workspace = slashes(workspace?);
        let (head, rest) = (path.get(..workspace.len())?, &path[workspace.len()..]);
        // A drive letter's case varies on Windows; a Unix path's does not.
        let same = head == workspace
            || (workspace.as_bytes().get(1) == Some(&b':')
                && head.eq_ignore_ascii_case(&workspace));
        rest.strip_prefix('/').filter(|_| same)?.to_string()
    } else {
        // `trim_start_matches("./")`, without the substring searcher it
        // brings in (1 KB).
        let mut path = path.as_str();
        while let Some(rest) = path.strip_prefix("./") {
            path = rest;
        }
        path.to_string()
    };
    let bad = relative.is_empty()
        || relative
            .split('/')
            .any(|part| part == ".." || part.is_empty());
    (!bad).then_some(relative)
}

/// Percent-encodes a path, keeping its `/` separators.
fn encoded(path: &str) -> String {
    crate::text::percent_encoded(path, true)
}

/// The URL without a user before its host: Azure Pipelines names an Azure
/// Repos repository by its clone URL, `https://ORG@dev.azure.com/ORG/...`,
/// which a browser would open as a login to `ORG` (and `url_problem` refuses).
fn without_user(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = host_end(rest);
    match rest.as_bytes()[..end].iter().rposition(|&b| b == b'@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The test's source at the commit that failed, as the CI's code host shows
/// it, and its path from the repository root: GitHub, GitLab, Bitbucket and
/// Azure Repos. `None` outside those or without the variables it needs.
pub fn source(variables: &[Variable], location: &SourceLocation) -> Option<(String, String)> {
    let var = |name| get(variables, name);
    let line = location.line.filter(|l| *l > 0);
    // Each code host's CI: its checkout and its commit. One shape of link
    // serves GitHub, GitLab and Bitbucket (`{base}/{blob}/{sha}/{path}` and
    // a line anchor), built in one place: the component's size (P4).
    let (host, workspace, commit) = if var("GITHUB_ACTIONS").is_some() {
        (Host::GitHub, "GITHUB_WORKSPACE", "GITHUB_SHA")
    } else if var("GITLAB_CI").is_some() {
        (Host::GitLab, "CI_PROJECT_DIR", "CI_COMMIT_SHA")
    } else if var("BITBUCKET_BUILD_NUMBER").is_some() {
        (Host::Bitbucket, "BITBUCKET_CLONE_DIR", "BITBUCKET_COMMIT")
    } else if var("TF_BUILD").is_some() {
        (Host::Azure, "BUILD_SOURCESDIRECTORY", "BUILD_SOURCEVERSION")
    } else {
        return None;
    };
    let path = relative_path(location, var(workspace))?;
    let sha = var(commit)?;
    let (base, blob, anchor) = match host {
        Host::GitHub => (
            format!(
                "{}/{}",
                var("GITHUB_SERVER_URL")?.trim_end_matches('/'),
                var("GITHUB_REPOSITORY")?
            ),
            "blob",
            "#L",
        ),
        Host::GitLab => (
            format!("{}/-", var("CI_PROJECT_URL")?.trim_end_matches('/')),
            "blob",
            "#L",
        ),
        Host::Bitbucket => {
            // Bitbucket names its origin with http://; it serves https.
            let origin = var("BITBUCKET_GIT_HTTP_ORIGIN")?.trim_end_matches('/');
            let origin = match origin.strip_prefix("http://") {
                Some(rest) => format!("https://{rest}"),
                None => origin.to_string(),
            };
            (origin, "src", "#lines-")
        }
        Host::Azure => {
            let uri = without_user(var("BUILD_REPOSITORY_URI")?.trim_end_matches('/'));
            match var("BUILD_REPOSITORY_PROVIDER") {
                Some("GitHub") | Some("GitHubEnterprise") => (
                    uri.strip_suffix(".git").unwrap_or(&uri).to_string(),
                    "blob",
                    "#L",
                ),
                Some("TfsGit") => {
                    // As Azure Repos links one line itself: from its start to
                    // the start of the next (`lineEnd` the same line marks
                    // nothing).
                    let lines = line
                        .map(|l| {
                            let end = l.saturating_add(1);
                            format!("&line={l}&lineEnd={end}&lineStartColumn=1&lineEndColumn=1&lineStyle=plain")
                        })
                        .unwrap_or_default();
                    let href = format!(
                        "{uri}?path=/{}&version=GC{sha}{lines}&_a=contents",
                        encoded(&path)
                    );
                    return url_problem(&href, false).is_none().then_some((href, path));
                }
                _ => return None,
            }
        }
    };
    let anchor = line.map(|l| format!("{anchor}{l}")).unwrap_or_default();
    let href = format!("{base}/{blob}/{sha}/{}{anchor}", encoded(&path));
    url_problem(&href, false).is_none().then_some((href, path))
}

enum Host {
    GitHub,
    GitLab,
    Bitbucket,
    Azure,
}

/// The links on-call needs, in that order: the source of `failure`'s test
/// (none for an aggregate), the CI run, the runbook.
pub fn of(failure: Option<&TestFailure>, run: Option<&Run>, runbook: Option<&str>) -> Vec<Link> {
    let mut links = Vec::new();
    let located = failure.and_then(|f| Some((f.source.as_ref()?, &f.ci)));
    if let Some((location, (href, path))) = located.and_then(|(at, ci)| Some((at, source(ci, at)?)))
    {
        let at = match location.line {
            Some(line) if line > 0 => format!("{path} line {line}"),
            _ => path,
        };
        links.push(Link {
            href,
            text: format!("Test source: {at}"),
        });
    }
    if let Some(run) = run {
        if let Some(url) = &run.url {
            links.push(Link {
                href: url.clone(),
                text: format!("{} run", run.system),
            });
        }
    }
    if let Some(runbook) = runbook {
        links.push(Link {
            href: runbook.to_string(),
            text: "Runbook".to_string(),
        });
    }
    links
}

/// The links as lines of a REST incident's body: "Runbook: https://…".
pub fn lines(links: &[Link]) -> String {
    let lines: Vec<String> = links
        .iter()
        .map(|l| format!("{}: {}", l.text, l.href))
        .collect();
    crate::text::join(&lines, "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::variables as vars;

    fn at(path: &str, line: Option<u32>) -> SourceLocation {
        SourceLocation {
            path: path.to_string(),
            line,
        }
    }

    fn href(variables: &[Variable], location: &SourceLocation) -> Option<String> {
        source(variables, location).map(|(href, _)| href)
    }

    const SHA: &str = "4f2a9c1d0e5b7a8c9d0e1f2a3b4c5d6e7f8a9b0c";

    fn github() -> Vec<Variable> {
        vars(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_SHA", SHA),
            ("GITHUB_WORKSPACE", "/home/runner/work/shop/shop"),
        ])
    }

    #[test]
    fn github_links_the_file_at_the_commit_with_and_without_a_line() {
        let path = "/home/runner/work/shop/shop/tests/test_checkout.py";
        assert_eq!(
            source(&github(), &at(path, Some(41))),
            Some((
                format!("https://github.com/acme/shop/blob/{SHA}/tests/test_checkout.py#L41"),
                "tests/test_checkout.py".to_string()
            ))
        );
        assert_eq!(
            href(&github(), &at(path, None)).as_deref(),
            Some(
                format!("https://github.com/acme/shop/blob/{SHA}/tests/test_checkout.py").as_str()
            )
        );
        // Line 0 is no line.
        assert_eq!(
            href(&github(), &at(path, Some(0))),
            href(&github(), &at(path, None))
        );
        // GitHub Enterprise, named with a trailing slash.
        let mut enterprise = github();
        enterprise[1].value = "https://git.acme.example/".into();
        assert_eq!(
            href(&enterprise, &at(path, Some(7))).as_deref(),
            Some(
                format!("https://git.acme.example/acme/shop/blob/{SHA}/tests/test_checkout.py#L7")
                    .as_str()
            )
        );
    }

    #[test]
    fn gitlab_links_the_file_at_the_commit_with_and_without_a_line() {
        let ci = vars(&[
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_URL", "https://gitlab.com/acme/shop"),
            ("CI_PROJECT_DIR", "/builds/acme/shop"),
            ("CI_COMMIT_SHA", SHA),
        ]);
        let path = "/builds/acme/shop/tests/test_checkout.py";
        assert_eq!(
            href(&ci, &at(path, Some(41))).as_deref(),
            Some(
                format!("https://gitlab.com/acme/shop/-/blob/{SHA}/tests/test_checkout.py#L41")
                    .as_str()
            )
        );
        assert_eq!(
            href(&ci, &at(path, None)).as_deref(),
            Some(
                format!("https://gitlab.com/acme/shop/-/blob/{SHA}/tests/test_checkout.py")
                    .as_str()
            )
        );
    }

    #[test]
    fn bitbucket_links_the_file_at_the_commit_over_https_with_and_without_a_line() {
        let ci = vars(&[
            ("BITBUCKET_BUILD_NUMBER", "77"),
            (
                "BITBUCKET_GIT_HTTP_ORIGIN",
                "http://bitbucket.org/acme/shop",
            ),
            (
                "BITBUCKET_CLONE_DIR",
                "/opt/atlassian/pipelines/agent/build",
            ),
            ("BITBUCKET_COMMIT", SHA),
        ]);
        let path = "/opt/atlassian/pipelines/agent/build/tests/test_checkout.py";
        assert_eq!(
            href(&ci, &at(path, Some(41))).as_deref(),
            Some(
                format!(
                    "https://bitbucket.org/acme/shop/src/{SHA}/tests/test_checkout.py#lines-41"
                )
                .as_str()
            )
        );
        assert_eq!(
            href(&ci, &at(path, None)).as_deref(),
            Some(
                format!("https://bitbucket.org/acme/shop/src/{SHA}/tests/test_checkout.py")
                    .as_str()
            )
        );
    }

    fn azure(provider: &str, uri: &str) -> Vec<Variable> {
        vars(&[
            ("TF_BUILD", "True"),
            ("BUILD_REPOSITORY_PROVIDER", provider),
            ("BUILD_REPOSITORY_URI", uri),
            ("BUILD_SOURCESDIRECTORY", "D:\\a\\1\\s"),
            ("BUILD_SOURCEVERSION", SHA),
        ])
    }

    #[test]
    fn azure_repos_links_a_windows_path_under_the_sources_directory() {
        // Azure Pipelines names the repository by its clone URL, the
        // organization as a user before the host: the link goes without it.
        let ci = azure("TfsGit", "https://acme@dev.azure.com/acme/shop/_git/shop");
        let path = "D:\\a\\1\\s\\tests\\test_x.py";
        assert_eq!(
            source(&ci, &at(path, Some(12))),
            Some((
                format!("https://dev.azure.com/acme/shop/_git/shop?path=/tests/test_x.py&version=GC{SHA}&line=12&lineEnd=13&lineStartColumn=1&lineEndColumn=1&lineStyle=plain&_a=contents"),
                "tests/test_x.py".to_string()
            ))
        );
        assert_eq!(
            href(&ci, &at(path, None)).as_deref(),
            Some(format!("https://dev.azure.com/acme/shop/_git/shop?path=/tests/test_x.py&version=GC{SHA}&_a=contents").as_str())
        );
        // A drive letter in the other case is the same drive.
        assert!(href(&ci, &at("d:\\a\\1\\s\\tests\\test_x.py", None)).is_some());
        // The last line there is still a line.
        let last = href(&ci, &at(path, Some(u32::MAX))).unwrap();
        assert!(
            last.contains(&format!("&line={0}&lineEnd={0}&", u32::MAX)),
            "{last}"
        );
    }

    #[test]
    fn azure_pipelines_on_a_github_repository_links_as_github_and_on_others_not_at_all() {
        let ci = azure("GitHub", "https://github.com/acme/shop.git");
        assert_eq!(
            href(&ci, &at("D:\\a\\1\\s\\tests\\test_x.py", Some(3))).as_deref(),
            Some(format!("https://github.com/acme/shop/blob/{SHA}/tests/test_x.py#L3").as_str())
        );
        let ci = azure("Bitbucket", "https://bitbucket.org/acme/shop.git");
        assert_eq!(
            href(&ci, &at("D:\\a\\1\\s\\tests\\test_x.py", Some(3))),
            None
        );
    }

    #[test]
    fn a_path_outside_the_workspace_or_climbing_out_of_it_gives_no_link() {
        for path in [
            "/tmp/tests/test_checkout.py",
            // Shares the workspace's first characters, not the folder.
            "/home/runner/work/shop/shop2/tests/test_checkout.py",
            "/home/runner/work/shop/shop",
            "/home/runner/work/shop/shop/../secrets/test_x.py",
            "/home/runner/work/shop/shop/tests/../../test_x.py",
            "../tests/test_x.py",
            "tests/../../test_x.py",
            "",
        ] {
            assert_eq!(href(&github(), &at(path, Some(1))), None, "{path}");
        }
        // An absolute path with no workspace to make it relative to.
        let mut no_workspace = github();
        no_workspace.retain(|v| v.name != "GITHUB_WORKSPACE");
        assert_eq!(
            href(
                &no_workspace,
                &at("/home/runner/work/shop/shop/tests/x.py", None)
            ),
            None
        );
    }

    #[test]
    fn a_relative_junit_path_is_from_the_repository_root() {
        for path in [
            "./tests/x.py",
            "tests/x.py",
            "tests\\x.py",
            ".\\tests\\x.py",
        ] {
            assert_eq!(
                source(&github(), &at(path, Some(5))),
                Some((
                    format!("https://github.com/acme/shop/blob/{SHA}/tests/x.py#L5"),
                    "tests/x.py".to_string()
                )),
                "{path}"
            );
        }
    }

    #[test]
    fn spaces_and_other_characters_in_a_path_are_percent_encoded() {
        let path = "/home/runner/work/shop/shop/tests/my checks/test_café#1.py";
        assert_eq!(
            source(&github(), &at(path, Some(2))),
            Some((
                format!("https://github.com/acme/shop/blob/{SHA}/tests/my%20checks/test_caf%C3%A9%231.py#L2"),
                "tests/my checks/test_café#1.py".to_string()
            ))
        );
    }

    #[test]
    fn without_a_variable_it_needs_or_outside_ci_there_is_no_source_link() {
        let path = at("tests/x.py", Some(1));
        for missing in ["GITHUB_SHA", "GITHUB_REPOSITORY", "GITHUB_SERVER_URL"] {
            let mut ci = github();
            ci.retain(|v| v.name != missing);
            assert_eq!(href(&ci, &path), None, "{missing}");
        }
        let mut blank = github();
        blank[3].value = "  ".into();
        assert_eq!(href(&blank, &path), None, "a blank commit");
        assert_eq!(href(&vars(&[("GITHUB_SHA", SHA)]), &path), None);
        // A server that is no http(s) URL makes no link.
        let mut odd = github();
        odd[1].value = "javascript:alert(1)".into();
        assert_eq!(href(&odd, &path), None);
    }

    #[test]
    fn url_problem_wants_https_for_a_runbook_a_host_no_spaces_and_a_bounded_length() {
        assert_eq!(
            url_problem("https://wiki.example.com/runbooks/checkout", true),
            None
        );
        assert_eq!(url_problem("http://ci.example.com/job/1", false), None);
        assert_eq!(
            url_problem("http://wiki.example.com/runbook", true).as_deref(),
            Some("must be an https:// URL")
        );
        for not_http in [
            "ftp://x.example.com/f",
            "wiki.example.com/runbook",
            "javascript:alert(1)",
            "HTTPS//x",
        ] {
            assert_eq!(
                url_problem(not_http, false).as_deref(),
                Some("must be an http(s):// URL"),
                "{not_http}"
            );
            assert_eq!(
                url_problem(not_http, true).as_deref(),
                Some("must be an https:// URL"),
                "{not_http}"
            );
        }
        for no_host in [
            "https://",
            "https:///runbook",
            "https://:443/x",
            "https://?q",
            "https://user@wiki.example.com/x",
        ] {
            assert_eq!(
                url_problem(no_host, true).as_deref(),
                Some("names no host"),
                "{no_host}"
            );
        }
        for spaced in [
            "https://wiki.example.com/run book",
            "https://wiki.example.com/x\n",
            "https://wiki.example.com/\tx",
            "https://wiki.example.com/\u{7f}",
        ] {
            assert_eq!(
                url_problem(spaced, true).as_deref(),
                Some("holds spaces or control characters"),
                "{spaced:?}"
            );
        }
        let longest = format!("https://wiki.example.com/{}", "a".repeat(URL_MAX - 25));
        assert_eq!(longest.len(), URL_MAX);
        assert_eq!(url_problem(&longest, true), None);
        assert_eq!(
            url_problem(&format!("{longest}a"), true).as_deref(),
            Some("is longer than 2048 bytes")
        );
    }

    fn failure(ci: Vec<Variable>, source: Option<SourceLocation>) -> TestFailure {
        TestFailure {
            nodeid: "tests/x.py::test_x".into(),
            short_name: None,
            docstring: None,
            message: None,
            traceback: String::new(),
            phase: crate::pytest_pagerduty::alerts::types::Phase::Call,
            duration_seconds: 0.0,
            ci,
            host: String::new(),
            source,
            failed_at_ms: None,
        }
    }

    #[test]
    fn the_links_are_the_source_the_run_and_the_runbook_in_that_order_with_readable_text() {
        let f = failure(github(), Some(at("tests/x.py", Some(5))));
        let run = Run {
            system: "GitHub Actions".into(),
            url: Some("https://github.com/acme/shop/actions/runs/42".into()),
            ..Run::default()
        };
        let links = of(Some(&f), Some(&run), Some("https://wiki.example.com/rb"));
        let shown: Vec<(&str, &str)> = links
            .iter()
            .map(|l| (l.text.as_str(), l.href.as_str()))
            .collect();
        let source = format!("https://github.com/acme/shop/blob/{SHA}/tests/x.py#L5");
        assert_eq!(
            shown,
            [
                ("Test source: tests/x.py line 5", source.as_str()),
                (
                    "GitHub Actions run",
                    "https://github.com/acme/shop/actions/runs/42"
                ),
                ("Runbook", "https://wiki.example.com/rb"),
            ]
        );
        assert_eq!(
            lines(&links),
            format!("Test source: tests/x.py line 5: {source}\nGitHub Actions run: https://github.com/acme/shop/actions/runs/42\nRunbook: https://wiki.example.com/rb")
        );
        // Without a line, the path alone; an aggregate has no source.
        let f = failure(github(), Some(at("tests/x.py", None)));
        assert_eq!(of(Some(&f), None, None)[0].text, "Test source: tests/x.py");
        assert!(of(None, None, None).is_empty());
        assert_eq!(lines(&[]), "");
        // No source known, or a run without a link: neither is linked.
        let f = failure(github(), None);
        let no_url = Run::default();
        assert!(of(Some(&f), Some(&no_url), None).is_empty());
    }
}
