//! Remote copies whose objects went missing or were damaged after they were catalogued:
//! `list --remote` and `push` see it from the listing, `push` uploads them again from an intact
//! local archive, and `pull` never replaces a damaged local copy unasked.

use crate::remote_crypto::{R, configure_sealed, new_key};
use crate::s3::{REMOTE, Server};
use crate::util::{Env, flip_byte, stdout};

/// `(status, problem)` of `archive` in `list --remote --json`, and the exit code.
fn listed(env: &Env, archive: &str) -> ((String, String), Option<i32>) {
    let out = env.cmd(&["list", R, REMOTE, "--json"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["archive"] == archive)
        .unwrap();
    let text = |k: &str| row[k].as_str().unwrap_or_default().to_string();
    ((text("status"), text("problem")), out.status.code())
}

/// An encrypted remote holding one pushed backup; the environment and the archive's name.
fn pushed_sealed(server: &Server) -> (Env, String) {
    let env = Env::new();
    let recipient = new_key(&env);
    configure_sealed(server, &env, &recipient);
    env.sample("s");
    let archive = env.backup("s");
    env.run(&["push", &archive, R, REMOTE]);
    (env, archive)
}

#[test]
fn a_deleted_remote_archive_object_is_listed_as_damaged_and_push_uploads_it_again() {
    let Some(server) = Server::get("a_deleted_remote_archive_object_is_listed") else {
        return;
    };
    let (env, archive) = pushed_sealed(&server);
    let object = format!("{archive}.age");
    server.remote().delete(&object).unwrap();

    let ((status, problem), code) = listed(&env, &archive);
    assert_eq!((status.as_str(), code), ("damaged", Some(1)), "{problem}");
    assert!(
        problem.contains(&format!("{object} is missing")),
        "{problem}"
    );
    let text = stdout(&env.run_code(&["list", R, REMOTE], 1));
    assert!(text.contains("1 damaged on the remote"), "{text}");
    assert!(
        text.contains(&format!("resbak push {archive} --remote {REMOTE}")),
        "{text}"
    );

    let out = env.run(&["push", &archive, R, REMOTE]);
    assert!(out.contains(&format!("Repaired {archive}")), "{out}");
    assert!(out.contains("1 repaired"), "{out}");
    assert!(server.remote().stat(&object).unwrap().is_some());
    assert_eq!(
        listed(&env, &archive),
        (("both".into(), String::new()), Some(0))
    );
    env.run(&["verify", R, REMOTE]);
    let out = env.run(&["push", &archive, R, REMOTE]);
    assert!(out.contains("Already on"), "{out}");
}

#[test]
fn a_remote_object_of_the_wrong_size_is_repaired_only_from_an_intact_local_copy() {
    let Some(server) = Server::get("a_remote_object_of_the_wrong_size") else {
        return;
    };
    let (env, archive) = pushed_sealed(&server);
    let object = format!("{archive}.age");
    server
        .remote()
        .put_object(&object, b"short".to_vec())
        .unwrap();
    let ((status, problem), code) = listed(&env, &archive);
    assert_eq!((status.as_str(), code), ("damaged", Some(1)), "{problem}");
    assert!(problem.contains("5 bytes"), "{problem}");

    flip_byte(&env.backups().join(&archive), 200);
    let out = env.run_code(&["push", &archive, R, REMOTE], 1);
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Already on"), "{text}");
    assert!(text.contains("damaged"), "{text}");
    let left = server.remote().stat(&object).unwrap().unwrap();
    assert_eq!(left.size, 5, "the damaged copy is left as it was");
}

#[test]
fn a_same_size_damaged_remote_object_gets_a_next_step_that_works() {
    let Some(server) = Server::get("a_same_size_damaged_remote_object") else {
        return;
    };
    let (env, archive) = pushed_sealed(&server);
    let object = format!("{archive}.age");
    let size = server.remote().stat(&object).unwrap().unwrap().size;
    let other = vec![7u8; usize::try_from(size).unwrap()];
    server.remote().put_object(&object, other).unwrap();
    assert_eq!(
        listed(&env, &archive),
        (("both".into(), String::new()), Some(0))
    );
    let out = env.run_code(&["verify", R, REMOTE], 1);
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let step = format!("resbak push {archive} --remote {REMOTE} --repair");
    assert!(text.contains(&step), "{text}");
    let out = env.run(&["push", &archive, R, REMOTE]);
    assert!(
        out.contains("Already on"),
        "only --repair reads the copy: {out}"
    );
    // The step as it says; a corrupt local archive is never sent in its place.
    let path = env.backups().join(&archive);
    let intact = std::fs::read(&path).unwrap();
    flip_byte(&path, 200);
    env.run_code(&["push", &archive, R, REMOTE, "--repair"], 1);
    env.run_code(&["verify", R, REMOTE], 1);
    std::fs::write(&path, intact).unwrap();
    let out = env.run(&["push", &archive, R, REMOTE, "--repair"]);
    assert!(out.contains(&format!("Repaired {archive}")), "{out}");
    env.run(&["verify", R, REMOTE]);
    let out = env.run(&["push", &archive, R, REMOTE, "--repair"]);
    assert!(out.contains("Already on"), "{out}");
}

#[test]
fn pull_and_restore_over_a_damaged_local_copy_say_how_to_take_the_remote_one() {
    let Some(server) = Server::get("pull_over_a_damaged_local_copy") else {
        return;
    };
    let (env, archive) = pushed_sealed(&server);
    let path = env.backups().join(&archive);
    flip_byte(&path, 200);
    let damaged = std::fs::read(&path).unwrap();
    let err = env.fail(&["pull", &archive, R, REMOTE], 1);
    assert!(err.contains("damaged") && err.lines().count() == 1, "{err}");
    let step = format!("resbak pull {archive} --remote {REMOTE}");
    assert!(err.contains(&step) && err.contains("mv "), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), damaged, "left as it was");

    std::fs::remove_dir_all(env.results().join("s")).unwrap();
    let err = env.fail(&["restore", &archive, R, REMOTE], 1);
    assert!(err.contains("corrupt") && err.contains(&step), "{err}");

    // The commands as the message gives them.
    std::fs::rename(&path, env.backups().join(format!("{archive}.damaged"))).unwrap();
    env.run(&["pull", &archive, R, REMOTE]);
    env.run(&["verify", &archive]);
}

#[test]
fn prune_remote_never_counts_a_damaged_copy_as_kept() {
    let Some(server) = Server::get("prune_remote_never_counts_a_damaged_copy") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    let archives: Vec<String> = (0..3).map(|_| env.backup("s")).collect();
    env.run(&["push", "s", R, REMOTE]);
    let remote = server.remote();
    remote.delete(&archives[2]).unwrap();
    let out = env
        .cmd(&["prune", "--keep", "1", R, REMOTE])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}{err}");
    assert!(
        err.contains("not counted as kept") && err.contains(&archives[2]),
        "{err}"
    );
    // The newest intact copy is the one kept; the damaged one is left for a repair.
    assert!(
        text.contains(&format!("Removed old backup: {}", archives[0])),
        "{text}"
    );
    assert!(remote.stat(&archives[1]).unwrap().is_some(), "{text}");
    let entry = format!("{}.entry.yaml", archives[2]);
    assert!(remote.stat(&entry).unwrap().is_some(), "{text}");
}
