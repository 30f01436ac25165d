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

    use crate::fixtures::variables as vars;

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

    fn shard(pairs: &[(&str, &str)]) -> Option<String> {
        run(&vars(pairs)).expect("a CI run").shard
    }

    #[test]
    fn gitlab_and_azure_number_their_shards_from_1() {
        let gitlab = |index, total| {
            shard(&[
                ("GITLAB_CI", "true"),
                ("CI_NODE_INDEX", index),
                ("CI_NODE_TOTAL", total),
            ])
        };
        assert_eq!(gitlab("1", "4").as_deref(), Some("1 of 4"));
        assert_eq!(gitlab("2", "4").as_deref(), Some("2 of 4"));
        assert_eq!(gitlab("4", "4").as_deref(), Some("4 of 4"));
        assert_eq!(gitlab("0", "4"), None, "GitLab has no shard 0");
        assert_eq!(gitlab("5", "4"), None);
        let azure = shard(&[
            ("TF_BUILD", "True"),
            ("SYSTEM_JOBPOSITIONINPHASE", "3"),
            ("SYSTEM_TOTALJOBSINPHASE", "3"),
        ]);
        assert_eq!(azure.as_deref(), Some("3 of 3"));
    }

    #[test]
    fn circleci_buildkite_and_bitbucket_number_their_shards_from_0() {
        for (detect, index, total) in [
            ("CIRCLECI", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL"),
            (
                "BUILDKITE",
                "BUILDKITE_PARALLEL_JOB",
                "BUILDKITE_PARALLEL_JOB_COUNT",
            ),
            (
                "BITBUCKET_BUILD_NUMBER",
                "BITBUCKET_PARALLEL_STEP",
                "BITBUCKET_PARALLEL_STEP_COUNT",
            ),
        ] {
            let of = |i, n| shard(&[(detect, "true"), (index, i), (total, n)]);
            assert_eq!(of("0", "4").as_deref(), Some("1 of 4"), "{detect}");
            assert_eq!(of("1", "4").as_deref(), Some("2 of 4"), "{detect}");
            assert_eq!(of("3", "4").as_deref(), Some("4 of 4"), "{detect}");
            assert_eq!(of("4", "4"), None, "{detect}: past the last");
        }
    }

    #[test]
    fn one_job_or_numbers_that_are_not_numbers_make_no_shard() {
        let gitlab = |index, total| {
            shard(&[
                ("GITLAB_CI", "true"),
                ("CI_NODE_INDEX", index),
                ("CI_NODE_TOTAL", total),
            ])
        };
        assert_eq!(gitlab("1", "1"), None, "a single job is no shard");
        for (index, total) in [
            ("two", "4"),
            ("2", "four"),
            ("-1", "4"),
            ("2", "-4"),
            ("", "4"),
            ("2", ""),
            ("2.0", "4"),
            ("1", "0"),
        ] {
            assert_eq!(gitlab(index, total), None, "{index:?} of {total:?}");
        }
        assert_eq!(
            shard(&[("GITLAB_CI", "true"), ("CI_NODE_INDEX", "2")]),
            None
        );
        let circle = shard(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_NODE_INDEX", "4294967295"),
            ("CIRCLE_NODE_TOTAL", "4294967295"),
        ]);
        assert_eq!(circle, None, "no overflow past u32");
        // Systems without shards, and surrounding spaces.
        assert_eq!(shard(&[("GITHUB_ACTIONS", "true")]), None);
        assert_eq!(gitlab(" 2 ", " 4 ").as_deref(), Some("2 of 4"));
    }

    #[test]
    fn bitbucket_pipelines_builds_the_run_url_from_the_repository_and_build_number() {
        let run = run(&vars(&[
            ("BITBUCKET_BUILD_NUMBER", "77"),
            ("BITBUCKET_REPO_FULL_NAME", "acme/shop"),
            ("BITBUCKET_COMMIT", "4f2a9c1d"),
            ("BITBUCKET_BRANCH", "main"),
        ]))
        .unwrap();
        assert_eq!(run.system, "Bitbucket Pipelines");
        assert_eq!(
            run.url.as_deref(),
            Some("https://bitbucket.org/acme/shop/pipelines/results/77")
        );
        assert_eq!(
            (run.commit.as_deref(), run.branch.as_deref(), run.job),
            (Some("4f2a9c1d"), Some("main"), None)
        );
        let without_repo = super::run(&vars(&[("BITBUCKET_BUILD_NUMBER", "77")])).unwrap();
        assert_eq!(without_repo.url, None);
    }

    #[test]
    fn describe_names_the_job_and_the_shard() {
        let run = run(&vars(&[
            ("GITLAB_CI", "true"),
            ("CI_JOB_URL", "https://gitlab.com/acme/shop/-/jobs/77"),
            ("CI_JOB_NAME", "test"),
            ("CI_NODE_INDEX", "2"),
            ("CI_NODE_TOTAL", "4"),
            ("CI_COMMIT_REF_NAME", "main"),
        ]))
        .unwrap();
        assert_eq!(
            describe(&run),
            "GitLab CI https://gitlab.com/acme/shop/-/jobs/77 (job test, shard 2 of 4, branch main)"
        );
    }
}
