use crate::util::{Env, write};
use std::fs;

#[test]
fn diff_against_the_results_folder_and_between_archives() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    let out = env.run(&["diff", &first]);
    assert!(
        out.trim_end().ends_with("0 added, 0 removed, 0 changed"),
        "{out}"
    );
    write(&root.join("runs/new.csv"), "n\n");
    fs::remove_file(root.join("trades.csv")).unwrap();
    write(&root.join("metrics.json"), "{\"sharpe\": 2.0}");
    let out = env.run(&["diff", &first]);
    assert!(out.contains("+ runs/new.csv"), "{out}");
    assert!(out.contains("- trades.csv"), "{out}");
    assert!(out.contains("~ metrics.json  (content)"), "{out}");
    assert!(out.contains("1 added, 1 removed, 1 changed"), "{out}");
    let second = env.backup("s");
    let changes: serde_json::Value =
        serde_json::from_str(&env.run(&["diff", &first, &second, "--json"])).unwrap();
    let by_path = |p: &str| {
        changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == p)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_path("runs/new.csv")["change"], "added");
    assert_eq!(by_path("trades.csv")["change"], "removed");
    assert_eq!(by_path("metrics.json")["what"], "content");
    assert_eq!(changes.as_array().unwrap().len(), 3, "{changes}");
    assert!(!env.results().join(".resbak-restore").exists());
}

#[test]
fn names_with_control_characters_stay_on_one_line() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    write(&root.join("odd\nname.csv"), "x\n");
    let out = env.run(&["diff", &first]);
    assert!(out.contains("+ odd\\nname.csv"), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
}
