//! The remote catalogue beside the local one: `list --remote` shows local damage as `list`
//! does, and each archive's index travels with it (pushed, pulled, checked).

use crate::remote_crypto::R;
use crate::s3::{REMOTE, Server};
use crate::util::{Env, flip_byte, stdout};
use std::collections::BTreeMap;
use std::fs;

/// `archive -> status` from `list ... --json`, and the exit code.
fn statuses(env: &Env, args: &[&str]) -> (BTreeMap<String, String>, Option<i32>) {
    let out = env.cmd(args).arg("--json").output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap().iter().map(|r| {
        let text = |k: &str| r[k].as_str().unwrap().to_string();
        (text("archive"), text("status"))
    });
    (rows.collect(), out.status.code())
}

#[test]
fn list_remote_shows_local_damage_as_list_does_and_exits_1() {
    let Some(server) = Server::get("list_remote_shows_local_damage") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    let mut names = BTreeMap::new();
    for s in ["flipped", "short", "gone", "fine"] {
        env.sample(s);
        names.insert(s, env.backup(s));
    }
    for s in ["flipped", "gone", "fine"] {
        env.run(&["push", &names[s], R, REMOTE]);
    }
    let path = |s: &str| env.backups().join(&names[s]);
    flip_byte(&path("flipped"), 200);
    env.run_code(&["verify", &names["flipped"]], 1);
    let short = fs::read(path("short")).unwrap();
    fs::write(path("short"), &short[..short.len() / 2]).unwrap();
    fs::remove_file(path("gone")).unwrap();

    let (local, code) = statuses(&env, &["list"]);
    assert_eq!(code, Some(1));
    let (listed, code) = statuses(&env, &["list", R, REMOTE]);
    assert_eq!(code, Some(1), "{listed:?}");
    for s in ["flipped", "short", "gone"] {
        assert_eq!(listed[&names[s]], local[&names[s]], "{s}: {listed:?}");
    }
    assert_eq!(listed[&names["flipped"]], "failed");
    assert_eq!(listed[&names["gone"]], "missing");
    assert_eq!(listed[&names["fine"]], "both");
    let out = env.run_code(&["list", R, REMOTE], 1);
    let text = stdout(&out);
    assert!(text.contains("Problems: 3 of 4"), "{text}");
    assert!(text.contains("manifest says"), "{text}");
}
