//! What `ops/` ships, checked: the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules ops/alerts_test.yml`), and the Grafana dashboard is JSON with a panel
//! query for every metric family the README's table lists.
//!
//! promtool comes with Debian's `prometheus` package, which `.ci/run` installs. Where it is
//! missing the rules tests print a notice and pass, except under CI (`CI` set, as `.ci/run`
//! and CI services set it), where a missing promtool fails them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The promtool binary, or `None` (with a notice) where it is missing outside CI.
fn promtool() -> Option<PathBuf> {
    let found = ["promtool", "/usr/bin/promtool"]
        .into_iter()
        .map(PathBuf::from)
        .find(|program| {
            Command::new(program)
                .arg("--version")
                .output()
                .is_ok_and(|output| output.status.success())
        });
    if found.is_none() {
        let install = "install it with `sudo apt-get install -y prometheus` (Debian/Ubuntu) \
                       or from https://prometheus.io/download/";
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and promtool is missing: {install}"
        );
        eprintln!("skipped: promtool is not installed; {install}");
    }
    found
}

/// Runs promtool with `args` in `ops/`; its output, after asserting it succeeded.
fn run(promtool: &Path, args: &[&str]) -> String {
    let output = Command::new(promtool)
        .args(args)
        .current_dir(root().join("ops"))
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

#[test]
fn the_alert_rules_are_valid_and_pass_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let checked = run(&promtool, &["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run(&promtool, &["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn the_rules_name_the_mission_alerts() {
    let rules = std::fs::read_to_string(root().join("ops/alerts.yml")).expect("ops/alerts.yml");
    for alert in [
        "ResilienceRetryRateHigh",
        "ResilienceSlowRetryingCall",
        "ResilienceFailureRateHigh",
        "ResilienceBreakerOpen",
        "ResilienceCacheHitRatioDrop",
    ] {
        assert!(
            rules.contains(&format!("- alert: {alert}\n")),
            "ops/alerts.yml has no alert {alert}"
        );
    }
}

/// The metric names of the README's metrics table: the rows starting `| \`resilience_`.
fn readme_families() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("the README");
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `resilience_"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| format!("resilience_{name}"))
        .collect()
}

#[test]
fn the_dashboard_has_a_panel_for_every_family() {
    let text = std::fs::read_to_string(root().join("ops/dashboard.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("a list of panels");
    let mut queries = Vec::new();
    for panel in panels.iter().filter(|panel| panel["type"] != "row") {
        assert!(
            panel["title"]
                .as_str()
                .is_some_and(|title| !title.is_empty()),
            "a panel without a title: {panel}"
        );
        let targets = panel["targets"].as_array().expect("a panel's targets");
        assert!(!targets.is_empty(), "a panel without a query: {panel}");
        queries.extend(
            targets
                .iter()
                .map(|target| target["expr"].as_str().expect("a query").to_string()),
        );
    }
    let families = readme_families();
    assert!(families.len() >= 25, "the README's table: {families:?}");
    for family in families {
        assert!(
            queries.iter().any(|query| query.contains(&family)),
            "no panel of ops/dashboard.json queries {family}"
        );
    }
}
