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
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || host.contains('@') {
        return Some("names no host".to_string());
    }
    None
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
    path.replace('\\', "/").trim_end_matches('/').to_string()
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
        path.trim_start_matches("./").to_string()
    };
    let bad = relative.is_empty()
        || relative
            .split('/')
            .any(|part| part == ".." || part.is_empty());
    (!bad).then_some(relative)
}

/// Percent-encodes a path, keeping its `/` separators.
fn encoded(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The test's source at the commit that failed, as the CI's code host shows
/// it, and its path from the repository root: GitHub, GitLab, Bitbucket and
/// Azure Repos. `None` outside those or without the variables it needs.
pub fn source(variables: &[Variable], location: &SourceLocation) -> Option<(String, String)> {
    let var = |name| get(variables, name);
    let line = location.line.filter(|l| *l > 0);
    let github = |base: &str, sha: &str, path: &str| {
        let anchor = line.map(|l| format!("#L{l}")).unwrap_or_default();
        format!("{base}/blob/{sha}/{}{anchor}", encoded(path))
    };
    let (href, path) = if var("GITHUB_ACTIONS").is_some() {
        let path = relative_path(location, var("GITHUB_WORKSPACE"))?;
        let base = format!(
            "{}/{}",
            var("GITHUB_SERVER_URL")?.trim_end_matches('/'),
            var("GITHUB_REPOSITORY")?
        );
        (github(&base, var("GITHUB_SHA")?, &path), path)
    } else if var("GITLAB_CI").is_some() {
        let path = relative_path(location, var("CI_PROJECT_DIR"))?;
        let base = format!("{}/-", var("CI_PROJECT_URL")?.trim_end_matches('/'));
        (github(&base, var("CI_COMMIT_SHA")?, &path), path)
    } else if var("BITBUCKET_BUILD_NUMBER").is_some() {
        let path = relative_path(location, var("BITBUCKET_CLONE_DIR"))?;
        // Bitbucket names its origin with http://; it serves https.
        let origin = var("BITBUCKET_GIT_HTTP_ORIGIN")?.trim_end_matches('/');
        let origin = match origin.strip_prefix("http://") {
            Some(rest) => format!("https://{rest}"),
            None => origin.to_string(),
        };
        let anchor = line.map(|l| format!("#lines-{l}")).unwrap_or_default();
        let sha = var("BITBUCKET_COMMIT")?;
        (
            format!("{origin}/src/{sha}/{}{anchor}", encoded(&path)),
            path,
        )
    } else if var("TF_BUILD").is_some() {
        let path = relative_path(location, var("BUILD_SOURCESDIRECTORY"))?;
        let uri = var("BUILD_REPOSITORY_URI")?.trim_end_matches('/');
        let sha = var("BUILD_SOURCEVERSION")?;
        let href = match var("BUILD_REPOSITORY_PROVIDER") {
            Some("GitHub") | Some("GitHubEnterprise") => {
                github(uri.strip_suffix(".git").unwrap_or(uri), sha, &path)
            }
            Some("TfsGit") => {
                let lines = line
                    .map(|l| format!("&line={l}&lineEnd={l}&lineStartColumn=1&lineEndColumn=1&lineStyle=plain"))
                    .unwrap_or_default();
                format!(
                    "{uri}?path=/{}&version=GC{sha}{lines}&_a=contents",
                    encoded(&path)
                )
            }
            _ => return None,
        };
        (href, path)
    } else {
        return None;
    };
    url_problem(&href, false).is_none().then_some((href, path))
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
