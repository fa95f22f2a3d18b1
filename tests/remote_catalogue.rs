//! The remote catalogue beside the local one: `list --remote` shows local damage as `list`
//! does, and each archive's index travels with it (pushed, pulled, checked).

use crate::remote::backup_and_push;
use crate::remote_crypto::{R, configure_sealed, object_bytes, sealed_backup, share_key};
use crate::s3::{REMOTE, Server};
use crate::util::{Env, flip_byte, stdout};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

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

/// The manifest entry of `archive` in `env`.
fn entry(env: &Env, archive: &str) -> serde_yaml::Value {
    let manifest = env.manifest();
    let backups = manifest["backups"].as_sequence().unwrap();
    backups
        .iter()
        .find(|e| e["backup_file"].as_str() == Some(archive))
        .unwrap()
        .clone()
}

/// The `index_sha256` of `archive` in `env`'s manifest.
fn index_sha(env: &Env, archive: &str) -> Option<String> {
    entry(env, archive)["index_sha256"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn the_index_travels_encrypted_with_its_archive() {
    let Some(server) = Server::get("the_index_travels_encrypted_with_its_archive") else {
        return;
    };
    let (here, recipient, archive) = sealed_backup(&server);
    let sha = index_sha(&here, &archive).expect("a new backup has an index");
    here.run(&["push", &archive, R, REMOTE]);
    let remote = server.remote();
    let idx = format!("{archive}.idx");
    assert_eq!(remote.stat(&idx).unwrap(), None, "no plaintext index");
    let sealed = object_bytes(&server, &format!("{idx}.age"));
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    let plain = fs::read(here.backups().join(&idx)).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&plain[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("runs/"),
        "the index names the sample's paths: {text}"
    );
    assert!(sealed.len() > plain.len() && !sealed.ends_with(&plain));
    let sidecar = remote.read_entry(&archive).unwrap().unwrap();
    assert_eq!(sidecar.entry.index_sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(sidecar.index.unwrap().size, sealed.len() as u64);

    let there = Env::new();
    share_key(&here, &there);
    configure_sealed(&server, &there, &recipient);
    there.run(&["pull", &archive, R, REMOTE]);
    assert_eq!(fs::read(there.backups().join(&idx)).unwrap(), plain);
    assert_eq!(index_sha(&there, &archive), Some(sha));
    there.run(&["verify", &archive]);
    there.run(&["verify", R, REMOTE]);
    there.run(&["verify", R, REMOTE, "--deep"]);
}

#[test]
fn a_backup_pushed_without_an_index_pulls_and_gets_one_built_here() {
    let Some(server) = Server::get("a_backup_pushed_without_an_index_pulls") else {
        return;
    };
    let here = Env::new();
    server.configure(&here);
    here.sample("s");
    let archive = backup_and_push(&here, "s");
    // What an older resbak left: the entry's index_sha256, but no index object or block.
    let remote = server.remote();
    let mut old = remote.read_entry(&archive).unwrap().unwrap();
    old.index = None;
    let text = old.render().unwrap();
    assert!(
        text.contains("index_sha256") && !text.contains("\nindex:"),
        "{text}"
    );
    remote
        .put_object(&format!("{archive}.entry.yaml"), text)
        .unwrap();
    remote.delete(&format!("{archive}.idx")).unwrap();
    here.run(&["verify", R, REMOTE]);

    let there = Env::new();
    server.configure(&there);
    let out = there.run(&["pull", &archive, R, REMOTE]);
    assert!(out.contains("has no index on test"), "{out}");
    let built = there.backups().join(format!("{archive}.idx"));
    assert_eq!(
        index_sha(&there, &archive),
        Some(crate::util::sha256_file(&built))
    );
    there.run(&["verify", &archive]);
    let listed = there.run(&["ls", &archive]);
    assert!(listed.contains("runs/"), "{listed}");
}

#[test]
fn a_missing_or_damaged_remote_index_is_reported_and_never_placed() {
    let Some(server) = Server::get("a_missing_or_damaged_remote_index") else {
        return;
    };
    let here = Env::new();
    server.configure(&here);
    here.sample("s");
    let archive = backup_and_push(&here, "s");
    let remote = server.remote();
    let idx = format!("{archive}.idx");
    let good = object_bytes(&server, &idx);
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x01;
    remote.put_object(&idx, bad).unwrap();
    let out = stdout(&here.run_code(&["verify", R, REMOTE], 1));
    assert!(out.contains("index object SHA-256 mismatch"), "{out}");

    let there = Env::new();
    server.configure(&there);
    let out = there.run_code(&["pull", &archive, R, REMOTE], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not usable") && err.contains("building one here"),
        "{err}"
    );
    there.run(&["verify", &archive]);

    remote.delete(&idx).unwrap();
    let out = stdout(&here.run_code(&["verify", R, REMOTE], 1));
    assert!(out.contains("is missing"), "{out}");
    remote.put_object(&idx, good).unwrap();
    here.run(&["verify", R, REMOTE]);
}

/// A sweep of 500 runs records 3,000 headline metrics: an entry object of about 90 KiB.
#[test]
fn a_large_sweep_with_its_metrics_pushes_and_pulls() {
    let Some(server) = Server::get("a_large_sweep_with_its_metrics_pushes_and_pulls") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    let stats = r##"{"Sharpe Ratio": 1.5, "Return [%]": 12.5, "Max. Drawdown [%]": -3.2,
        "# Trades": 10, "Win Rate [%]": 55.0, "Sortino Ratio": 2.1}"##;
    for run in 0..500 {
        let path = env
            .results()
            .join(format!("sweep/runs/r{run:03}/stats.json"));
        crate::util::write(&path, stats);
    }
    let archive = env.backup("sweep");
    env.run(&["push", &archive, R, REMOTE]);
    let there = Env::new();
    server.configure(&there);
    there.run(&["pull", &archive, R, REMOTE]);
    assert_eq!(entry(&there, &archive), entry(&env, &archive));
    let metrics = |env: &Env| {
        let listed: serde_json::Value =
            serde_json::from_str(&env.run(&["metrics", "--json"])).unwrap();
        listed[0]["metrics"].clone()
    };
    assert_eq!(metrics(&env).as_object().map(|m| m.len()), Some(3000));
    assert_eq!(metrics(&there), metrics(&env));
}
