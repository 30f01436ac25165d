//! The CI run a failure happened in: which variables describe it, and how
//! it appears (a link to the run, commit, branch, job).

use crate::pytest_pagerduty::alerts::types::Variable;

/// One CI system: the variable that says it is running, and how to read it.
struct System {
    name: &'static str,
    detect: &'static str,
    /// Variables holding the run's URL, or `None` when it is built.
    url: Option<&'static str>,
    commit: &'static str,
    branch: &'static str,
    job: Option<&'static str>,
    /// This job's place among parallel ones: (index, count, index is from 0).
    shard: Option<(&'static str, &'static str, bool)>,
}

const SYSTEMS: &[System] = &[
    System {
        name: "GitHub Actions",
        detect: "GITHUB_ACTIONS",
        url: None,
        commit: "GITHUB_SHA",
        branch: "GITHUB_REF_NAME",
        job: Some("GITHUB_JOB"),
        shard: None,
    },
    System {
        name: "GitLab CI",
        detect: "GITLAB_CI",
        url: Some("CI_JOB_URL"),
        commit: "CI_COMMIT_SHA",
        branch: "CI_COMMIT_REF_NAME",
        job: Some("CI_JOB_NAME"),
        shard: Some(("CI_NODE_INDEX", "CI_NODE_TOTAL", false)),
    },
    System {
        name: "Jenkins",
        detect: "JENKINS_URL",
        url: Some("BUILD_URL"),
        commit: "GIT_COMMIT",
        branch: "GIT_BRANCH",
        job: Some("JOB_NAME"),
        shard: None,
    },
    System {
        name: "Buildkite",
        detect: "BUILDKITE",
        url: Some("BUILDKITE_BUILD_URL"),
        commit: "BUILDKITE_COMMIT",
        branch: "BUILDKITE_BRANCH",
        job: Some("BUILDKITE_LABEL"),
        shard: Some((
            "BUILDKITE_PARALLEL_JOB",
            "BUILDKITE_PARALLEL_JOB_COUNT",
            true,
        )),
    },
    System {
        name: "CircleCI",
        detect: "CIRCLECI",
        url: Some("CIRCLE_BUILD_URL"),
        commit: "CIRCLE_SHA1",
        branch: "CIRCLE_BRANCH",
        job: Some("CIRCLE_JOB"),
        shard: Some(("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", true)),
    },
    System {
        name: "Azure Pipelines",
        detect: "TF_BUILD",
        url: None,
        commit: "BUILD_SOURCEVERSION",
        branch: "BUILD_SOURCEBRANCHNAME",
        job: Some("SYSTEM_JOBDISPLAYNAME"),
        shard: Some((
            "SYSTEM_JOBPOSITIONINPHASE",
            "SYSTEM_TOTALJOBSINPHASE",
            false,
        )),
    },
    System {
        name: "Bitbucket Pipelines",
        detect: "BITBUCKET_BUILD_NUMBER",
        url: None,
        commit: "BITBUCKET_COMMIT",
        branch: "BITBUCKET_BRANCH",
        job: None,
        shard: Some((
            "BITBUCKET_PARALLEL_STEP",
            "BITBUCKET_PARALLEL_STEP_COUNT",
            true,
        )),
    },
];

/// Variables used to build URLs that no single variable holds.
const URL_PARTS: &[&str] = &[
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "SYSTEM_COLLECTIONURI",
    "SYSTEM_TEAMPROJECT",
    "BUILD_BUILDID",
    "BITBUCKET_REPO_FULL_NAME",
];

/// Every variable the component reads; hosts pass exactly these.
pub fn variables() -> Vec<String> {
    // Sorted and without repeats, by insertion: `sort_unstable` costs the
    // component 5 KB for these few names.
    let mut names: Vec<&str> = Vec::new();
    let every = SYSTEMS
        .iter()
        .flat_map(|s| {
            let (index, count) = match s.shard {
                Some((index, count, _)) => (Some(index), Some(count)),
                None => (None, None),
            };
            [
                Some(s.detect),
                s.url,
                Some(s.commit),
                Some(s.branch),
                s.job,
                index,
                count,
            ]
        })
        .flatten()
        .chain(URL_PARTS.iter().copied())
        .chain(crate::links::VARIABLES.iter().copied());
    for name in every {
        if let Err(at) = names.binary_search(&name) {
            names.insert(at, name);
        }
    }
    names.into_iter().map(str::to_string).collect()
}

/// The longest commit, branch or job name shown, in bytes.
const FACT_MAX: usize = 256;

/// The CI run, as the component shows it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Run {
    pub system: String,
    pub url: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub job: Option<String>,
    /// "2 of 4": this job among parallel ones (CI sharding), when it is one.
    pub shard: Option<String>,
}

/// The run described by the variables, when they name a CI system.
pub fn run(variables: &[Variable]) -> Option<Run> {
    let get = |name: &str| {
        variables
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let system = SYSTEMS.iter().find(|s| get(s.detect).is_some())?;
    let url = match system.url {
        Some(name) => get(name),
        None if system.detect == "BITBUCKET_BUILD_NUMBER" => {
            match (
                get("BITBUCKET_REPO_FULL_NAME"),
                get("BITBUCKET_BUILD_NUMBER"),
            ) {
                (Some(repo), Some(number)) => Some(format!(
                    "https://bitbucket.org/{repo}/pipelines/results/{number}"
                )),
                _ => None,
            }
        }
        None if system.detect == "GITHUB_ACTIONS" => {
            match (
                get("GITHUB_SERVER_URL"),
                get("GITHUB_REPOSITORY"),
                get("GITHUB_RUN_ID"),
            ) {
                (Some(server), Some(repo), Some(id)) => {
                    Some(format!("{server}/{repo}/actions/runs/{id}"))
                }
                _ => None,
            }
        }
        None => match (
            get("SYSTEM_COLLECTIONURI"),
            get("SYSTEM_TEAMPROJECT"),
            get("BUILD_BUILDID"),
        ) {
            (Some(collection), Some(project), Some(id)) => Some(format!(
                "{}/{project}/_build/results?buildId={id}",
                collection.trim_end_matches('/')
            )),
            _ => None,
        },
    };
    // Each fact short and on one line; a link cut short would lead nowhere.
    let fact = |name: &str| {
        get(name).map(|v| crate::text::cut_end(&crate::text::printable(&v, true), FACT_MAX))
    };
    Some(Run {
        system: system.name.to_string(),
        url: url.filter(|u| crate::links::url_problem(u, false).is_none()),
        commit: fact(system.commit),
        branch: fact(system.branch),
        job: system.job.and_then(fact),
        shard: system.shard.and_then(|(index, count, from_zero)| {
            let index: u32 = get(index)?.parse().ok()?;
            let count: u32 = get(count)?.parse().ok()?;
            let index = if from_zero {
                index.checked_add(1)?
            } else {
                index
            };
            (count > 1 && (1..=count).contains(&index)).then(|| format!("{index} of {count}"))
        }),
    })
}

/// "GitHub Actions https://…/runs/42 (job build, branch main, commit 4f2a9c1)",
/// for an incident's body, where on-call reads it.
pub fn describe(run: &Run) -> String {
    let mut text = run.system.clone();
    if let Some(url) = &run.url {
        text.push(' ');
        text.push_str(url);
    }
    let facts: Vec<String> = [
        ("job", &run.job),
        ("shard", &run.shard),
        ("branch", &run.branch),
        ("commit", &run.commit),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
    .collect();
    if !facts.is_empty() {
        text.push_str(&format!(" ({})", crate::text::join(&facts, ", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_are_every_name_once_in_sorted_order() {
        let mut expected: Vec<&str> = URL_PARTS.to_vec();
        expected.extend(crate::links::VARIABLES);
        for s in SYSTEMS {
            expected.extend([s.detect, s.commit, s.branch]);
            expected.extend(s.url);
            expected.extend(s.job);
            expected.extend(s.shard.map(|(i, _, _)| i));
            expected.extend(s.shard.map(|(_, c, _)| c));
        }
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(variables(), expected);
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<Variable> {
        pairs
            .iter()
            .map(|(n, v)| Variable {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    #[test]
    fn outside_ci_there_is_no_run() {
        assert_eq!(run(&vars(&[("GITHUB_SHA", "abc")])), None);
    }

    #[test]
    fn github_actions_builds_the_run_url() {
        let run = run(&vars(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_SHA", "abc123"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_JOB", "smoke"),
        ]))
        .unwrap();
        assert_eq!(run.system, "GitHub Actions");
        assert_eq!(
            run.url.as_deref(),
            Some("https://github.com/acme/shop/actions/runs/42")
        );
        assert_eq!(
            (
                run.commit.as_deref(),
                run.branch.as_deref(),
                run.job.as_deref()
            ),
            (Some("abc123"), Some("main"), Some("smoke"))
        );
    }

    #[test]
    fn azure_pipelines_builds_the_run_url() {
        let run = run(&vars(&[
            ("TF_BUILD", "True"),
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/acme/"),
            ("SYSTEM_TEAMPROJECT", "shop"),
            ("BUILD_BUILDID", "7"),
        ]))
        .unwrap();
        assert_eq!(
            run.url.as_deref(),
            Some("https://dev.azure.com/acme/shop/_build/results?buildId=7")
        );
    }

    #[test]
    fn every_system_is_read_from_the_variables_it_asked_for() {
        let asked = variables();
        for system in SYSTEMS {
            for name in [
                Some(system.detect),
                system.url,
                Some(system.commit),
                Some(system.branch),
                system.job,
            ]
            .into_iter()
            .flatten()
            {
                assert!(asked.iter().any(|a| a == name), "{name}");
            }
        }
        let run = run(&vars(&[
            ("JENKINS_URL", "https://ci"),
            ("BUILD_URL", "javascript:alert(1)"),
        ]))
        .unwrap();
        assert_eq!(run.url, None, "only http(s) links");
    }

    #[test]
    fn describe_names_the_system_link_and_facts_it_has() {
        let mut run = Run {
            system: "GitHub Actions".into(),
            url: Some("https://github.com/a/b/actions/runs/1".into()),
            commit: Some("4f2a9c1".into()),
            branch: Some("main".into()),
            job: None,
            shard: None,
        };
        assert_eq!(
            describe(&run),
            "GitHub Actions https://github.com/a/b/actions/runs/1 (branch main, commit 4f2a9c1)"
        );
        run.url = None;
        run.commit = None;
        run.branch = None;
        assert_eq!(describe(&run), "GitHub Actions");
    }
}
