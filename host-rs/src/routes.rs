//! Which failed test cases page, and where: the `[[route]]` tables of the
//! command's config file, matched in order on suite, class and name globs.

use glob::Pattern;
use serde::Deserialize;

use crate::junit::Case;
use crate::{MarkerArgument, MarkerValue};

/// The config file (`pagerduty-junit.toml`). Secrets never live here: a
/// route names the environment variable that holds its routing key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub settings: FileSettings,
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
}

/// Settings without secrets; flags and the environment override them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub api_url: Option<String>,
    pub events_url: Option<String>,
    pub default_from: Option<String>,
    pub timeout_ms: Option<u32>,
    /// Runs in a row a case must fail in before it pages, for routes that
    /// do not say.
    pub page_after_failures: Option<u32>,
    // No allow-list here: only the command line may widen it, so a config
    // file in a branch cannot send the environment's credentials elsewhere.
}

/// A route's value for one of the marker's keywords, as the file wrote it.
/// It reaches the component as a marker's value of the same type would
/// (a string as text, an integer as a number, a list of strings as a list),
/// so the component checks its type and says what is wrong, as for a marker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Argument(toml::Value);

impl Argument {
    /// The component's `marker-value` for it.
    pub fn lower(&self) -> MarkerValue {
        match &self.0 {
            toml::Value::String(text) => MarkerValue::Text(text.clone()),
            toml::Value::Integer(number) => MarkerValue::Number(*number),
            toml::Value::Array(items) => {
                let texts: Option<Vec<String>> = items
                    .iter()
                    .map(|item| item.as_str().map(str::to_string))
                    .collect();
                texts.map_or_else(
                    || MarkerValue::Unsupported("array".into()),
                    MarkerValue::TextList,
                )
            }
            // "float", "boolean", "datetime", "table": the component names it.
            other => MarkerValue::Unsupported(other.type_str().to_string()),
        }
    }
}

impl From<String> for Argument {
    fn from(text: String) -> Self {
        Self(toml::Value::String(text))
    }
}

impl From<i64> for Argument {
    fn from(number: i64) -> Self {
        Self(toml::Value::Integer(number))
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Globs (`*`, `?`, `[..]`); an absent one matches anything.
    pub suite: Option<String>,
    pub class: Option<String>,
    pub name: Option<String>,
    /// Matching cases never page.
    #[serde(default)]
    pub ignore: bool,
    /// The marker's keywords: checked by the component, as a marker's are.
    pub service_id: Option<Argument>,
    /// The name of the environment variable holding an Events API v2 key.
    pub routing_key_env: Option<String>,
    pub urgency: Option<Argument>,
    pub severity: Option<Argument>,
    pub priority_id: Option<Argument>,
    pub escalation_policy_id: Option<Argument>,
    pub assignee_id: Option<Argument>,
    pub details: Option<Argument>,
    /// An `https` link on every alert of the route.
    pub runbook_url: Option<Argument>,
    /// Runs in a row a case must fail in before it pages (an integer).
    pub page_after_failures: Option<Argument>,
}

impl Config {
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        for (index, route) in config.routes.iter().enumerate() {
            for glob in [&route.suite, &route.class, &route.name]
                .into_iter()
                .flatten()
            {
                Pattern::new(glob)
                    .map_err(|e| format!("route {}: bad pattern {glob:?}: {e}", index + 1))?;
            }
        }
        Ok(config)
    }
}

impl Route {
    fn matches(&self, case: &Case) -> bool {
        let one = |glob: &Option<String>, value: &str| {
            glob.as_deref()
                .is_none_or(|g| Pattern::new(g).is_ok_and(|p| p.matches(value)))
        };
        one(&self.suite, &case.suite)
            && one(&self.class, &case.classname)
            && one(&self.name, &case.name)
    }

    /// What to check with the component, as the plugin's marker would say it;
    /// `routing_key` is the value read from `routing_key_env`.
    pub fn marker_arguments(&self, routing_key: Option<&str>) -> Vec<MarkerArgument> {
        let routing_key = routing_key.map(|k| Argument::from(k.to_string()));
        let fields = [
            ("service_id", self.service_id.as_ref()),
            ("routing_key", routing_key.as_ref()),
            ("urgency", self.urgency.as_ref()),
            ("severity", self.severity.as_ref()),
            ("priority_id", self.priority_id.as_ref()),
            ("escalation_policy_id", self.escalation_policy_id.as_ref()),
            ("assignee_id", self.assignee_id.as_ref()),
            ("details", self.details.as_ref()),
            ("runbook_url", self.runbook_url.as_ref()),
            ("page_after_failures", self.page_after_failures.as_ref()),
        ];
        fields
            .into_iter()
            .filter_map(|(name, value)| {
                value.map(|v| MarkerArgument {
                    name: name.to_string(),
                    value: v.lower(),
                })
            })
            .collect()
    }

    /// How the route is named in messages: its patterns.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("suite", &self.suite),
            ("class", &self.class),
            ("name", &self.name),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v:?}")))
        .collect();
        if parts.is_empty() {
            "every case".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// The index of the first route that matches the case.
pub fn route_for(routes: &[Route], case: &Case) -> Option<usize> {
    routes.iter().position(|r| r.matches(case))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::Outcome;

    fn case(suite: &str, classname: &str, name: &str) -> Case {
        Case {
            suite: suite.into(),
            classname: classname.into(),
            name: name.into(),
            file: None,
            line: None,
            seconds: 0.0,
            reported_at_ms: None,
            outcome: Outcome::Skipped,
        }
    }

    #[test]
    fn the_first_matching_route_wins_and_absent_globs_match_anything() {
        let config = Config::parse(
            r#"
            [[route]]
            suite = "shop::checkout"
            name = "*refund*"
            service_id = "PCHECK1"
            [[route]]
            class = "inventory*"
            ignore = true
            [[route]]
            service_id = "PANY001"
            "#,
        )
        .unwrap();
        let routes = &config.routes;
        assert_eq!(
            route_for(routes, &case("shop::checkout", "x", "refund_is_issued")),
            Some(0)
        );
        assert_eq!(
            route_for(routes, &case("shop::checkout", "x", "payment")),
            Some(2)
        );
        assert_eq!(
            route_for(routes, &case("s", "inventory warehouse", "sync")),
            Some(1)
        );
        assert_eq!(
            routes[0].describe(),
            r#"suite="shop::checkout" name="*refund*""#
        );
    }

    #[test]
    fn unknown_keys_and_bad_globs_are_refused() {
        assert!(Config::parse("[[route]]\nservice = \"P1\"")
            .unwrap_err()
            .contains("unknown field"));
        assert!(Config::parse("[[route]]\nname = \"[a\"")
            .unwrap_err()
            .contains("bad pattern"));
    }

    #[test]
    fn a_route_speaks_the_markers_language() {
        let route = Route {
            service_id: Some(Argument::from("P1".to_string())),
            urgency: Some(Argument::from("low".to_string())),
            ..Route::default()
        };
        let names: Vec<_> = route
            .marker_arguments(Some("k"))
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["service_id", "routing_key", "urgency"]);
    }

    #[test]
    fn a_routes_values_keep_their_types_for_the_component_to_check() {
        let config = Config::parse(
            r#"
            [[route]]
            service_id = "P1"
            page_after_failures = 2
            runbook_url = "https://wiki.example.com/runbooks/checkout"
            details = ["a", "b"]
            urgency = 1.5
            severity = true
            assignee_id = ["x", 1]
            "#,
        )
        .unwrap();
        let lowered: Vec<(String, MarkerValue)> = config.routes[0]
            .marker_arguments(None)
            .into_iter()
            .map(|a| (a.name, a.value))
            .collect();
        let value = |name: &str| {
            let found = lowered.iter().find(|(n, _)| n == name);
            found.map(|(_, v)| format!("{v:?}")).unwrap()
        };
        assert_eq!(value("page_after_failures"), "MarkerValue::Number(2)");
        assert_eq!(
            value("runbook_url"),
            r#"MarkerValue::Text("https://wiki.example.com/runbooks/checkout")"#
        );
        assert_eq!(value("details"), r#"MarkerValue::TextList(["a", "b"])"#);
        assert_eq!(value("urgency"), r#"MarkerValue::Unsupported("float")"#);
        assert_eq!(value("severity"), r#"MarkerValue::Unsupported("boolean")"#);
        assert_eq!(value("assignee_id"), r#"MarkerValue::Unsupported("array")"#);
    }
}
