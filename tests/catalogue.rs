//! The results catalogue: headline metrics recorded at backup time, tags, notes and pins,
//! `list --metrics`, `diff --metrics`, `show`, `metrics --refresh`, calendar retention and the
//! HTML report.

use crate::util::{Env, write};
use serde_json::Value as Json;
use std::fs;

/// backtesting.py's real `stats` (see `fixtures/backtesting_py/make.py`), as users save them.
const STATS_JSON: &str = include_str!("fixtures/backtesting_py/stats.json");
const STATS_CSV: &str = include_str!("fixtures/backtesting_py/stats.csv");
const RUN_BEST: &str = include_str!("fixtures/backtesting_py/runs/fast10_slow20/stats.json");
const RUN_IDLE: &str = include_str!("fixtures/backtesting_py/runs/fast50_slow200/stats.json");

/// A strategy folder holding backtesting.py's stats at its top and in two run folders.
fn backtest(env: &Env, strategy: &str) {
    let root = env.results().join(strategy);
    write(&root.join("stats.json"), STATS_JSON);
    write(&root.join("stats.csv"), STATS_CSV);
    write(&root.join("runs/fast10_slow20/stats.json"), RUN_BEST);
    write(&root.join("runs/fast50_slow200/stats.json"), RUN_IDLE);
    write(
        &root.join("trades.csv"),
        "EntryTime,ExitTime,PnL\n2005-01-03,2005-02-01,12.5\n",
    );
}

/// The metrics the catalogue records for the manifest's entry number `i`, as resbak reads them.
fn recorded(env: &Env, i: usize) -> serde_yaml::Value {
    let mut manifest = resbak::manifest::Manifest::load(&env.backups()).unwrap();
    manifest.attach_metrics(&env.backups()).unwrap();
    serde_yaml::to_value(&manifest.backups[i].metrics).unwrap()
}

fn number(v: &serde_yaml::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v:?}"))
}

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Writes `metrics.json` of `strategy` with these values and backs it up; returns the archive.
fn backup_with(env: &Env, strategy: &str, sharpe: f64, ret: f64) -> String {
    let root = env.results().join(strategy);
    write(
        &root.join("metrics.json"),
        &format!(r##"{{"Sharpe Ratio": {sharpe}, "Return [%]": {ret}, "# Trades": 40}}"##),
    );
    write(&root.join("trades.csv"), &format!("pnl\n{ret}\n"));
    env.backup(strategy)
}

#[test]
fn backtesting_py_stats_come_out_right_with_no_configuration() {
    let env = Env::new();
    backtest(&env, "goog_sma");
    env.run(&["backup", "goog_sma"]);
    let m = recorded(&env, 0);
    assert!(
        (number(&m["Return [%]"]) - 455.745_129_4).abs() < 1e-6,
        "{m:?}"
    );
    assert!((number(&m["Sharpe Ratio"]) - 0.596_858_454_6).abs() < 1e-9);
    assert_eq!(number(&m["# Trades"]), 94.0);
    assert_eq!(
        number(&m["Duration"]),
        3116.0 * 86_400.0,
        "a Timedelta in seconds"
    );
    assert_eq!(number(&m["Avg. Trade Duration"]), 33.0 * 86_400.0);
    assert!((number(&m["Win Rate [%]"]) - 53.191_489_36).abs() < 1e-6);
    assert!((number(&m["Equity Final [$]"]) - 55_574.512_94).abs() < 1e-4);
    // A run folder's keys carry its path; a run that never traded has NaN ratios.
    assert_eq!(number(&m["runs/fast10_slow20:# Trades"]), 94.0);
    assert!(number(&m["runs/fast50_slow200:Sharpe Ratio"]).is_nan());
    assert_eq!(number(&m["runs/fast50_slow200:# Trades"]), 0.0);
    let keys: Vec<&str> = m
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    for left_out in ["Start", "End", "_strategy", "_equity_curve", "_trades"] {
        assert!(!keys.contains(&left_out), "{left_out} in {keys:?}");
    }
    let listed = json(&env.run(&["list", "--json"]));
    assert_eq!(listed[0]["metrics"]["# Trades"], 94.0);
    assert!(listed[0]["metrics"]["runs/fast50_slow200:Sharpe Ratio"].is_null());
}

#[test]
fn every_run_of_a_generated_sweep_gets_its_own_keys() {
    let env = Env::new();
    let spec = crate::datagen::Spec {
        size: 400_000,
        seed: 15,
        files: Some(120),
    };
    let made = crate::datagen::generate(&env.results(), "sweep", &spec).unwrap();
    env.run(&["backup", "sweep"]);
    let m = recorded(&env, 0);
    let runs: Vec<String> = fs::read_dir(made.root.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(runs.len() > 1, "{runs:?}");
    for run in &runs {
        let sharpe = &m[format!("runs/{run}:Sharpe Ratio").as_str()];
        assert!(number(sharpe).is_finite(), "{run}: {m:?}");
        let duration = &m[format!("runs/{run}:Duration").as_str()];
        assert_eq!(
            number(duration),
            365.0 * 86_400.0 + 23.0 * 3600.0 + 59.0 * 60.0
        );
    }
    assert!(number(&m["Return [%]"]).is_finite());
}

#[test]
fn nested_json_csv_and_yaml_are_read_and_keys_can_be_chosen() {
    let env = Env::new();
    let root = env.results().join("s");
    write(
        &root.join("metrics.json"),
        r#"{"risk": {"max_dd": "-12.5%", "var": {"p95": 0.03}}, "name": "x", "up": Infinity}"#,
    );
    write(
        &root.join("stats.csv"),
        "key,value\nSharpe Ratio,1.25\nnote,fine\n",
    );
    write(
        &root.join("runs/a/metrics.yaml"),
        "win_rate: 55%\nhold: 1 days 12:00:00\n",
    );
    write(&root.join("runs/a/trades.csv"), "pnl\n1\n");
    env.run(&["backup", "s"]);
    let m = recorded(&env, 0);
    assert_eq!(number(&m["risk.max_dd"]), -12.5);
    assert_eq!(number(&m["risk.var.p95"]), 0.03);
    assert_eq!(number(&m["up"]), f64::INFINITY);
    assert_eq!(number(&m["Sharpe Ratio"]), 1.25);
    assert_eq!(number(&m["runs/a:win_rate"]), 55.0);
    assert_eq!(number(&m["runs/a:hold"]), 129_600.0);
    assert!(m.get("name").is_none() && m.get("note").is_none());
    // What a backup leaves out gives no metrics.
    env.run(&["backup", "--always", "s", "--exclude", "runs"]);
    let m = recorded(&env, 1);
    assert!(m.get("Sharpe Ratio").is_some() && m.get("runs/a:win_rate").is_none());
    write(
        &env.path().join("resbak.toml"),
        "[metrics]\nfiles = [\"stats.csv\"]\nkeys = [\"Sharpe Ratio\"]\n",
    );
    env.run(&["backup", "--always", "s"]);
    let m = recorded(&env, 2);
    assert_eq!(m.as_mapping().unwrap().len(), 1, "{m:?}");
    assert_eq!(number(&m["Sharpe Ratio"]), 1.25);
}

#[test]
fn a_broken_metrics_file_is_a_warning_and_the_backup_goes_on() {
    let env = Env::new();
    let root = env.results().join("s");
    write(&root.join("stats.json"), "{\"Sharpe Ratio\": 1.5,");
    write(&root.join("metrics.yaml"), "sharpe: 2.0\n");
    write(&root.join("trades.csv"), "pnl\n1\n");
    let out = env.run_code(&["backup", "s"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot parse metrics file stats.json") && err.contains("goes on"),
        "{err}"
    );
    assert_eq!(env.archives().len(), 1);
    let m = recorded(&env, 0);
    assert_eq!(number(&m["sharpe"]), 2.0, "the other file still counts");
    assert!(m.get("Sharpe Ratio").is_none());
    env.run(&["verify", "--deep"]);
}

#[test]
fn entries_without_metrics_tags_or_notes_are_written_as_before() {
    let env = Env::new();
    write(&env.results().join("plain/trades.csv"), "pnl\n1\n");
    env.run(&["backup", "plain"]);
    let text = fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    for key in ["metrics:", "tags:", "note:", "pin:"] {
        assert!(!text.contains(key), "{key} in\n{text}");
    }
}

#[test]
fn list_shows_chosen_metrics_sorts_by_one_and_filters_by_tag() {
    let env = Env::new();
    let low = backup_with(&env, "s", 0.5, 10.0);
    let high = backup_with(&env, "s", 1.9, 30.0);
    let mid = backup_with(&env, "s", 1.1, -5.0);
    env.run(&["tag", &high, "paper-v2"]);
    let out = env.run(&["list", "--metrics", "sharpe,Return [%]", "--sort", "Sharpe"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].ends_with("SHARPE RATIO  RETURN [%]"),
        "{}",
        lines[0]
    );
    let order: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, [high.as_str(), mid.as_str(), low.as_str()], "{out}");
    let last: Vec<&str> = lines[1].split_whitespace().rev().take(2).collect();
    assert_eq!(last, ["30", "1.9"], "{}", lines[1]);
    write(
        &env.path().join("resbak.toml"),
        "[metrics]\nlower_is_better = [\"Sharpe Ratio\"]\n",
    );
    let out = env.run(&["list", "--sort", "Sharpe Ratio"]);
    let first = out.lines().nth(1).unwrap().split_whitespace().next();
    assert_eq!(first, Some(low.as_str()), "lower is better: {out}");
    let tagged = env.run(&["list", "--tag", "paper-v2"]);
    assert_eq!(tagged.lines().count(), 2, "{tagged}");
    assert!(tagged.contains(&high));
    let err = env.fail(&["list", "--metrics", "Ratio"], 2);
    assert!(err.contains("no metric named \"Ratio\""), "{err}");
    let err = env.fail(&["list", "--sort", "Sharpe Ration"], 2);
    assert!(err.contains("did you mean \"Sharpe Ratio\"?"), "{err}");
    let listed = json(&env.run(&["list", "--json", "--tag", "paper-v2"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["tags"], serde_json::json!(["paper-v2"]));
    assert_eq!(listed[0]["metrics"]["# Trades"], 40.0);
}

#[test]
fn diff_metrics_shows_what_changed_as_text_and_json() {
    let env = Env::new();
    let old = backup_with(&env, "s", 1.0, 20.0);
    let new = backup_with(&env, "s", 1.5, 20.0);
    let out = env.run_code(&["diff", &old, &new, "--metrics"], 1);
    let text = crate::util::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["METRIC", &old, &new, "CHANGE", "CHANGE%"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["Sharpe", "Ratio", "1", "1.5", "+0.5", "+50.0%"]
    );
    assert_eq!(lines.len(), 3, "only what changed: {text}");
    assert!(lines[2].ends_with("1 metric changed, 2 the same"), "{text}");
    let all = env.run_code(&["diff", &old, &new, "--metrics", "--all"], 1);
    assert_eq!(crate::util::stdout(&all).lines().count(), 5);
    let out = env.run_code(&["diff", "s~1", "s", "--metrics", "--json"], 1);
    let report = json(&crate::util::stdout(&out));
    assert_eq!(
        report,
        serde_json::json!({"Sharpe Ratio": {"old": 1.0, "new": 1.5, "diff": 0.5}})
    );
    // Against the results folder as it is now; the same metrics exit 0.
    write(
        &env.results().join("s/metrics.json"),
        r##"{"Sharpe Ratio": 1.5, "Return [%]": 20.0, "# Trades": 41}"##,
    );
    let report = json(&crate::util::stdout(
        &env.run_code(&["diff", "s", "--metrics", "--json"], 1),
    ));
    assert_eq!(report["# Trades"]["diff"], 1.0);
    env.run(&["diff", &new, &new, "--metrics"]);
}

#[test]
fn tags_and_pins_protect_backups_from_prune_and_the_dry_run_says_why() {
    let env = Env::new();
    let first = backup_with(&env, "s", 1.0, 1.0);
    let second = backup_with(&env, "s", 1.1, 1.0);
    let third = backup_with(&env, "s", 1.2, 1.0);
    let fourth = backup_with(&env, "s", 1.3, 1.0);
    env.run(&["tag", &first, "paper-v2", "--note", "submitted version"]);
    env.run(&["tag", &second, "--pin"]);
    let out = env.run(&["prune", "s", "--keep", "1", "--dry-run"]);
    assert!(
        out.contains(&format!("keep    {first}  (tag paper-v2)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("keep    {second}  (pinned)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("remove  {third}  (no rule keeps it)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("keep    {fourth}  (newest 1)")),
        "{out}"
    );
    let report = json(&env.run(&["prune", "s", "--keep", "1", "--json"]));
    assert_eq!(report["removed"], serde_json::json!([third]));
    assert_eq!(
        report["decisions"][0]["kept_by"],
        serde_json::json!(["tag paper-v2"])
    );
    assert_eq!(report["decisions"][2]["kept_by"], serde_json::json!([]));
    assert_eq!(env.archives(), [first.clone(), second.clone(), fourth]);
    // Untagged and unpinned, they go at the next prune.
    env.run(&["untag", &first, "paper-v2", "--note"]);
    env.run(&["untag", &second, "--pin"]);
    env.run(&["prune", "s", "--keep", "1"]);
    assert_eq!(env.archives().len(), 1);
    let err = env.fail(&["tag", "s", "two words"], 2);
    assert!(err.contains("invalid tag \"two words\""), "{err}");
    env.fail(&["tag", "s"], 2);
}

#[test]
fn backup_tags_and_notes_the_new_backup_and_show_tells_everything() {
    let env = Env::new();
    backtest(&env, "goog_sma");
    env.run(&[
        "backup",
        "goog_sma",
        "--tag",
        "paper-v2",
        "--note",
        "submitted version",
    ]);
    let entry = &env.manifest()["backups"][0];
    assert_eq!(entry["tags"][0].as_str(), Some("paper-v2"));
    assert_eq!(entry["note"].as_str(), Some("submitted version"));
    env.run(&["verify"]);
    let out = env.run(&["show", "goog_sma"]);
    for expected in [
        "Strategy   goog_sma (regular backup)",
        "Tags       tags paper-v2; note \"submitted version\"",
        "SHA-256    ",
        ": intact",
        "  # Trades  ",
        "  and 59 metrics of 2 run folders (`resbak metrics goog_sma_",
        "Tree",
        "  runs/",
        "    fast10_slow20/",
        "  stats.csv  ",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    assert!(
        !out.contains("fast10_slow20/stats.json"),
        "depth 2 at most:\n{out}"
    );
    let shown = json(&env.run(&["show", "goog_sma", "--json"]));
    assert_eq!(shown["entry"]["metrics"]["# Trades"], 94.0);
    assert_eq!(shown["tree"][0]["path"], "runs");
    // Unchanged results are not backed up again: the hint names the backup to tag instead.
    let out = env.run_code(&["backup", "goog_sma", "--tag", "final"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    let archive = &env.archives()[0];
    assert!(
        err.contains(&format!("`resbak tag {archive} final` tags it")),
        "{err}"
    );
    let err = env.fail(&["backup", "--always", "goog_sma", "--tag", "two words"], 2);
    assert!(err.contains("invalid tag"), "{err}");
    assert_eq!(env.archives().len(), 1, "nothing is written");
}

#[test]
fn metrics_refresh_and_reindex_read_metrics_of_older_backups_from_their_archives() {
    let env = Env::new();
    backtest(&env, "goog_sma");
    let archive = env.backup("goog_sma");
    let manifest = env.backups().join("manifest.yaml");
    let metrics_file = env.backups().join("manifest.metrics.jsonl");
    let with_metrics = recorded(&env, 0);
    // As an older resbak wrote it: no metrics.
    fs::remove_file(&metrics_file).unwrap();
    let out = env.run(&["metrics"]);
    assert!(out.contains("no metrics recorded"), "{out}");
    let refreshed = json(&env.run(&["metrics", "--refresh", "--json"]));
    assert_eq!(refreshed[0]["refreshed"], true);
    assert_eq!(refreshed[0]["archive"], archive.as_str());
    assert_eq!(recorded(&env, 0), with_metrics);
    fs::remove_file(&manifest).unwrap();
    fs::remove_file(&metrics_file).unwrap();
    let out = env.run(&["reindex"]);
    assert!(
        out.contains("Metrics of 1 backup read from their archives"),
        "{out}"
    );
    assert_eq!(number(&recorded(&env, 0)["# Trades"]), 94.0);
}

#[test]
fn calendar_retention_from_flags_and_config_keeps_the_union() {
    let env = Env::new();
    write(&env.results().join("s/trades.csv"), "pnl\n1\n");
    let archive = env.backup("s");
    // Three more catalogued copies of the same bytes, made on other days.
    let manifest = env.backups().join("manifest.yaml");
    let mut catalogue: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(&manifest).unwrap()).unwrap();
    let entry = catalogue["backups"][0].clone();
    let days = [
        "2026-01-10T08:00:00Z",
        "2026-01-10T20:00:00Z",
        "2026-02-01T09:00:00Z",
    ];
    for (i, day) in days.iter().enumerate() {
        let name = format!("s_2026010{i}_000000.tar.gz");
        fs::copy(env.backups().join(&archive), env.backups().join(&name)).unwrap();
        let mut copy = entry.clone();
        copy["backup_file"] = name.as_str().into();
        copy["created"] = (*day).into();
        catalogue["backups"].as_sequence_mut().unwrap().push(copy);
    }
    fs::write(&manifest, serde_yaml::to_string(&catalogue).unwrap()).unwrap();
    let report = json(&env.run(&["prune", "--keep-daily", "3", "--dry-run", "--json"]));
    let kept_by: Vec<&Json> = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["kept_by"])
        .collect();
    assert_eq!(kept_by[0], &serde_json::json!([]), "{report}");
    assert_eq!(kept_by[1], &serde_json::json!(["daily 2026-01-10"]));
    assert_eq!(kept_by[2], &serde_json::json!(["daily 2026-02-01"]));
    assert_eq!(kept_by.len(), 4, "no --keep default beside a calendar rule");
    write(&env.path().join("resbak.toml"), "keep_monthly = 3\n");
    let report = json(&env.run(&["prune", "--keep", "1", "--dry-run", "--json"]));
    assert_eq!(
        report["decisions"][1]["kept_by"],
        serde_json::json!(["monthly 2026-01"])
    );
    assert_eq!(
        report["removed"],
        serde_json::json!(["s_20260100_000000.tar.gz"])
    );
    // backup prunes with the calendar rules too: the flag's and the file's, in union.
    let out = env.run(&["backup", "--always", "s", "--keep-daily", "1"]);
    assert_eq!(out.matches("Removed old backup: ").count(), 2, "{out}");
    assert!(
        out.contains(&format!("Removed old backup: {archive}")),
        "{out}"
    );
    assert!(
        out.contains("Removed old backup: s_20260100_000000.tar.gz"),
        "{out}"
    );
    assert_eq!(env.archives().len(), 3);
    write(&env.path().join("resbak.toml"), "keep_weekly = 0\n");
    env.fail(&["prune", "--dry-run"], 2);
}

#[test]
fn report_is_one_self_contained_page_and_replaces_only_a_report() {
    let env = Env::new();
    backup_with(&env, "s", 1.0, 10.0);
    let tagged = backup_with(&env, "s", 1.4, 12.0);
    env.run(&["tag", &tagged, "paper-v2"]);
    backup_with(&env, "t", 0.2, 3.0);
    let page_path = env.path().join("report.html");
    let out = env.run(&["report", "--html", "report.html"]);
    assert!(out.contains("3 backups of 2 strategies"), "{out}");
    let page = fs::read_to_string(&page_path).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("src="));
    let urls: Vec<&str> = page.matches("http").collect();
    assert_eq!(
        urls.len(),
        page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert_eq!(page.matches("<section class=\"strategy\"").count(), 2);
    // Sharpe Ratio, Return [%] and the size, for each strategy.
    assert_eq!(page.matches("<svg").count(), 6);
    assert!(page.contains("<figcaption>Sharpe Ratio</figcaption>"));
    assert_eq!(page.matches("<tr><td>").count(), 3, "one row per backup");
    assert!(page.contains("<span class=\"tag\">paper-v2</span>"));
    env.run(&["report", "s", "--html", "report.html"]);
    let page = fs::read_to_string(&page_path).unwrap();
    assert_eq!(page.matches("<section class=\"strategy\"").count(), 1);
    write(&env.path().join("mine.html"), "<p>my notes</p>");
    let err = env.fail(&["report", "--html", "mine.html"], 2);
    assert!(err.contains("is not a resbak report"), "{err}");
    assert_eq!(
        fs::read_to_string(env.path().join("mine.html")).unwrap(),
        "<p>my notes</p>"
    );
}

#[test]
fn a_tag_given_twice_is_one_tag_and_an_empty_filter_says_what_it_filtered() {
    let env = Env::new();
    write(&env.results().join("s/trades.csv"), "pnl\n1\n");
    env.run(&["backup", "s", "--tag", "paper", "--tag", "paper"]);
    let tags = env.manifest()["backups"][0]["tags"].clone();
    assert_eq!(
        tags,
        serde_yaml::from_str::<serde_yaml::Value>("[paper]").unwrap()
    );
    let out = env.run(&["list", "--tag", "nosuch"]);
    assert!(
        out.contains("No backups tagged nosuch in backups."),
        "{out}"
    );
    let out = env.run(&["list", "s", "--tag", "nosuch"]);
    assert!(out.contains("No backups of s tagged nosuch"), "{out}");
}

#[test]
fn untag_of_a_tag_that_is_not_there_says_so() {
    let env = Env::new();
    write(&env.results().join("s/trades.csv"), "pnl\n1\n");
    let archive = env.backup("s");
    env.run(&["tag", &archive, "paper"]);
    let out = env.cmd(&["untag", &archive, "papr"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{archive} has no tag papr")), "{err}");
    let tags = env.manifest()["backups"][0]["tags"].clone();
    assert_eq!(
        tags,
        serde_yaml::from_str::<serde_yaml::Value>("[paper]").unwrap()
    );
}

/// `show` over unreadable verify results says it ignores them, as `list` does, rather than
/// quietly showing the backup as never verified.
#[test]
fn show_warns_of_unreadable_verify_results() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    env.run(&["verify"]);
    fs::write(env.backups().join("verified.yaml"), "{ damaged").unwrap();
    let out = env.run_code(&["show", "s"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ignoring the recorded verify results"),
        "{err}"
    );
}

#[test]
fn a_misspelled_key_in_the_manifest_is_refused_with_its_line_and_nothing_is_pruned() {
    let env = Env::new();
    env.sample("s");
    let old = env.backup("s");
    env.backup("s");
    let path = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let edited = text.replacen(
        &format!("  backup_file: {old}\n"),
        &format!("  backup_file: {old}\n  pinned: true\n"),
        1,
    );
    assert_ne!(edited, text);
    fs::write(&path, &edited).unwrap();
    let line = edited.lines().position(|l| l == "  pinned: true").unwrap() + 1;
    for args in [
        &["prune", "s", "--keep", "1"][..],
        &["list"],
        &["backup", "s"],
    ] {
        let err = env.fail(args, 2);
        assert!(err.contains("unknown field `pinned`"), "{args:?}: {err}");
        assert!(err.contains(&format!("line {line}")), "{args:?}: {err}");
    }
    assert!(env.backups().join(&old).exists());
    assert_eq!(fs::read_to_string(&path).unwrap(), edited);
}

#[test]
fn a_manifest_that_lost_its_version_line_is_refused_not_taken_for_the_scripts_format() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    env.run(&["tag", &archive, "paper", "--note", "sent to the PM"]);
    let path = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let edited: String = text
        .lines()
        .filter(|l| !l.starts_with("version:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&path, &edited).unwrap();
    for args in [&["backup", "s", "--always"][..], &["list"], &["verify"]] {
        let err = env.fail(args, 2);
        assert!(err.contains("version"), "{args:?}: {err}");
    }
    assert_eq!(fs::read_to_string(&path).unwrap(), edited);
    assert!(!env.backups().join("manifest.yaml.pre-resbak").exists());
}

/// Pinning or tagging a backup whose archive file is gone warns that it protects nothing.
#[test]
fn pinning_a_backup_whose_file_is_missing_warns() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    fs::remove_file(env.backups().join(&archive)).unwrap();
    let out = env.run_code(&["tag", &archive, "--pin"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("the archive {archive} is missing")),
        "{err}"
    );
}

/// Metrics live in `manifest.metrics.jsonl`, so the commands that never show them do not parse
/// them (a sweep of 2,000 runs records 50,000): the manifest stays small. A manifest from an
/// older resbak, with the metrics inline, is still read and moves them on its next change; a
/// record of other bytes is never shown; metrics lost, edited or damaged are a warning where
/// metrics are shown (the manifest records their digest) and nothing at all elsewhere, and
/// `metrics --refresh` reads them back.
#[test]
fn metrics_live_beside_the_manifest_and_an_older_manifest_moves_them_there() {
    let env = Env::new();
    backtest(&env, "goog_sma");
    let archive = env.backup("goog_sma");
    let metrics_file = env.backups().join("manifest.metrics.jsonl");
    let manifest_text = || fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    // The manifest holds each entry's digest of its metrics, never the metrics.
    let digest_only = || {
        let text = manifest_text();
        assert!(!text.contains("  metrics:"), "{text}");
        assert!(text.contains("  metrics_sha256: "), "{text}");
    };
    digest_only();
    // JSON Lines: a header, then one record per backup.
    let text = fs::read_to_string(&metrics_file).unwrap();
    let lines: Vec<Json> = text.lines().map(json).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], serde_json::json!({"version": 1}));
    let record = &lines[1];
    assert_eq!(record["archive"], archive.as_str());
    assert_eq!(
        record["sha256"],
        env.manifest()["backups"][0]["sha256"].as_str().unwrap()
    );
    assert_eq!(record["metrics"]["# Trades"], 94.0);
    assert_eq!(record["metrics"]["runs/fast50_slow200:Sharpe Ratio"], "NaN");
    let sharpe =
        |env: &Env| json(&env.run(&["list", "--json"]))[0]["metrics"]["Sharpe Ratio"].clone();
    let expected = sharpe(&env);
    assert!((expected.as_f64().unwrap() - 0.596_858_454_6).abs() < 1e-9);

    // As an older resbak wrote it: the metrics inside the manifest.
    let all = recorded(&env, 0);
    fs::remove_file(&metrics_file).unwrap();
    let inline = serde_yaml::to_string(&serde_yaml::Mapping::from_iter([(
        "metrics".into(),
        all.clone(),
    )]))
    .unwrap();
    let inline: String = inline.lines().map(|l| format!("  {l}\n")).collect();
    env.edit_manifest(|text| format!("{text}{inline}"));
    assert!(manifest_text().contains("runs/fast50_slow200:Sharpe Ratio"));
    assert_eq!(sharpe(&env), expected);
    env.run(&["tag", &archive, "paper"]);
    digest_only();
    assert_eq!(recorded(&env, 0), all);

    // A record whose SHA-256 is not the entry's describes other bytes.
    let text = fs::read_to_string(&metrics_file).unwrap();
    let sha = env.manifest()["backups"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(&metrics_file, text.replace(&sha, &"0".repeat(64))).unwrap();
    assert!(sharpe(&env).is_null());
    fs::write(&metrics_file, &text).unwrap();

    // Metrics lost, edited or damaged are never shown, and always said: a changed digit, a
    // deleted file, a damaged one (which the next change replaces: still said after it).
    let lost = |env: &Env, args: &[&str], how: &str| {
        let out = env.run_code(args, 0);
        let err = String::from_utf8_lossy(&out.stderr);
        let line = format!("the metrics of 1 backup are {how} in ");
        assert!(err.contains(&line), "{args:?}: {err}");
        assert!(err.contains("resbak metrics --refresh"), "{args:?}: {err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(text.contains("\"# Trades\":94.0"), "{text}");
    fs::write(
        &metrics_file,
        text.replace("\"# Trades\":94.0", "\"# Trades\":95.0"),
    )
    .unwrap();
    let listed = json(&lost(&env, &["list", "--json"], "missing or altered"));
    assert!(listed[0]["metrics"].is_null(), "{listed}");
    fs::remove_file(&metrics_file).unwrap();
    let shown = lost(&env, &["show", &archive], "missing");
    assert!(shown.contains("none recorded"), "{shown}");
    lost(&env, &["report", "--html", "report.html"], "missing");
    fs::write(&metrics_file, "{\"version\": 1, \"backups\": {").unwrap();
    let out = env.run_code(&["list"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("manifest.metrics.jsonl is damaged at line 1"),
        "{err}"
    );
    assert!(err.contains("resbak metrics --refresh"), "{err}");
    // Asked for by name, they are an empty column, never "no metric named" (exit 2).
    let out = env.run_code(
        &["list", "--metrics", "Sharpe Ratio", "--sort", "Sharpe"],
        0,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("manifest.metrics.jsonl is damaged at line 1"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SHARPE"));
    // diff reads them from the archive, checked against its SHA-256: nothing to warn of.
    let out = env.run_code(&["diff", &archive, "--metrics"], 0);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ls never reads the metrics; a backup goes on.
    let out = env.run_code(&["ls", &archive], 0);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = env.run(&["backup", "--always", "goog_sma"]);
    assert!(second.contains("Backed up goog_sma"), "{second}");
    lost(&env, &["list"], "missing or altered");
    let out = env.run_code(&["metrics", "--refresh", "--json"], 0);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refreshed = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(refreshed[0]["refreshed"], true, "{refreshed}");
    let out = env.run_code(&["list", "--json"], 0);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = json(&String::from_utf8_lossy(&out.stdout));
    for row in [&listed[0], &listed[1]] {
        assert_eq!(row["metrics"]["Sharpe Ratio"], expected, "{listed}");
    }
}

/// `metrics`, `verify` and `push` take `STRATEGY~N` as `show`, `diff` and `restore` do.
#[test]
fn metrics_and_verify_take_strategy_tilde_n() {
    let env = Env::new();
    let older = backup_with(&env, "s", 1.5, 10.0);
    let newer = backup_with(&env, "s", 2.5, 20.0);
    let listed = json(&env.run(&["metrics", "s~1", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["archive"], older.as_str());
    assert_eq!(listed[0]["metrics"]["Sharpe Ratio"], 1.5);
    let listed = json(&env.run(&["metrics", "s~0", "--json"]));
    assert_eq!(listed[0]["archive"], newer.as_str());
    let out = env.run(&["verify", "s~1"]);
    assert!(out.contains(&older) && !out.contains(&newer), "{out}");
    let err = env.fail(&["verify", "s~2"], 2);
    assert!(err.contains("s~2 is out of range"), "{err}");
    let err = env.fail(&["metrics", "t~1"], 2);
    assert!(err.contains("did you mean \"s~1\"?"), "{err}");
}

/// The metrics file is read and rewritten a record at a time: a file cut short or a line
/// garbled loses only that record (said, never shown wrong), a change carries the other
/// records over as they are, byte for byte, and a file that cannot be read is never replaced.
#[test]
fn a_damaged_metrics_line_loses_only_its_record_and_an_unreadable_file_is_kept() {
    let env = Env::new();
    let first = backup_with(&env, "s", 1.5, 10.0);
    let second = backup_with(&env, "s", 2.5, 20.0);
    let metrics_file = env.backups().join("manifest.metrics.jsonl");
    let text = fs::read_to_string(&metrics_file).unwrap();
    let first_line = text.lines().nth(1).unwrap().to_string();
    assert!(first_line.contains(&first), "{text}");
    fs::write(&metrics_file, &text[..text.len() - 10]).unwrap();
    let out = env.run_code(&["list", "--json"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the metrics of 1 backup are missing or altered"),
        "{err}"
    );
    let listed = json(&String::from_utf8_lossy(&out.stdout));
    let by_name = |name: &str| {
        let rows = listed.as_array().unwrap();
        rows.iter().find(|r| r["archive"] == name).unwrap()["metrics"].clone()
    };
    assert_eq!(by_name(&first)["Sharpe Ratio"], 1.5);
    assert!(by_name(&second).is_null(), "{listed}");
    env.run(&["tag", &first, "kept"]);
    let now = fs::read_to_string(&metrics_file).unwrap();
    assert_eq!(now.lines().nth(1), Some(first_line.as_str()));
    assert_eq!(now.lines().count(), 2, "{now}");

    // A byte that is not text loses its own line only: a change carries the others over (it
    // dropped every record after it).
    let third = backup_with(&env, "s", 3.5, 30.0);
    let mut bytes = fs::read(&metrics_file).unwrap();
    let at = bytes.iter().position(|&b| b == b'\n').unwrap() + 20;
    bytes[at] = 0xff;
    fs::write(&metrics_file, &bytes).unwrap();
    env.run(&["tag", &third, "after"]);
    let listed = json(&env.run(&["list", "--json"]));
    let rows = listed.as_array().unwrap();
    let sharpe = |name: &str| {
        rows.iter().find(|r| r["archive"] == name).unwrap()["metrics"]["Sharpe Ratio"].clone()
    };
    assert!(sharpe(&first).is_null(), "{listed}");
    assert_eq!(sharpe(&third), 3.5, "{listed}");

    // A metrics file that cannot be read is never replaced: the change fails, nothing written.
    let manifest = fs::read(env.backups().join("manifest.yaml")).unwrap();
    fs::remove_file(&metrics_file).unwrap();
    fs::create_dir(&metrics_file).unwrap();
    let err = env.fail(&["tag", &third, "more"], 2);
    assert!(err.contains("manifest.metrics.jsonl"), "{err}");
    assert!(metrics_file.is_dir());
    assert_eq!(
        fs::read(env.backups().join("manifest.yaml")).unwrap(),
        manifest
    );
}

/// `diff --metrics` shows the metrics the catalogue recorded, without reading the archives: it
/// warns when an archive is missing or failed its last verify, as `ls` and `cat` do (it showed
/// them as if nothing were wrong).
#[test]
fn diff_metrics_warns_of_a_missing_or_damaged_archive() {
    let env = Env::new();
    let older = backup_with(&env, "s", 1.5, 10.0);
    let newer = backup_with(&env, "s", 2.5, 20.0);
    let out = env.run_code(&["diff", "s~1", "s", "--metrics"], 1);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = env.backups().join(&older);
    let len = fs::metadata(&path).unwrap().len();
    crate::util::flip_byte(&path, len / 2);
    env.run_code(&["verify"], 1);
    fs::remove_file(env.backups().join(&newer)).unwrap();
    let out = env.run_code(&["diff", "s~1", "s", "--metrics"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{older} is damaged"))
            && err.contains(&format!("{newer} is missing from"))
            && err.contains("its metrics shown are those recorded when it was made"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Sharpe Ratio"));
}
