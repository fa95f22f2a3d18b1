//! Encrypted off-site copies against a real S3 server (Garage in CI), interop with the age
//! command-line tool, sidecars a hostile bucket could hold, and two machines pushing one name.

use crate::s3::{REMOTE, Server};
use crate::util::{Env, have, sha256_file, snapshot, stdout};
use resbak::remote::{Sealed, Sidecar};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

pub(crate) const R: &str = "--remote";
pub(crate) const KEY: &str = "offsite.key";

/// Writes a new identity `offsite.key` in `env` with `resbak key generate`; its recipient.
pub(crate) fn new_key(env: &Env) -> String {
    let out = env.run(&["key", "generate", KEY]);
    let line = out.lines().find(|l| l.starts_with("Public key: ")).unwrap();
    line["Public key: ".len()..].to_string()
}

/// Configures `env` with an encrypted remote for `recipient`, decrypting with `offsite.key`.
pub(crate) fn configure_sealed(server: &Server, env: &Env, recipient: &str) {
    server.configure_with(
        env,
        &format!("recipients = [{recipient:?}]\nidentity_file = {KEY:?}\n"),
    );
}

/// A new machine with its own key, an encrypted remote for it, and one backup of a sample
/// strategy `s`: the machine, its recipient and the archive's name.
pub(crate) fn sealed_backup(server: &Server) -> (Env, String, String) {
    let here = Env::new();
    let recipient = new_key(&here);
    configure_sealed(server, &here, &recipient);
    here.sample("s");
    let archive = here.backup("s");
    (here, recipient, archive)
}

/// Copies the identity of `from` into `to`.
pub(crate) fn share_key(from: &Env, to: &Env) {
    fs::copy(from.path().join(KEY), to.path().join(KEY)).unwrap();
}

/// The whole object `name` on the remote.
pub(crate) fn object_bytes(server: &Server, name: &str) -> Vec<u8> {
    server
        .remote()
        .read_archive(name, |r| {
            let mut bytes = Vec::new();
            r.read_to_end(&mut bytes).map(|_| bytes)
        })
        .unwrap()
        .unwrap()
}

/// Files in the backup folder that are neither archives, the manifest, nor lock files.
fn strays(env: &Env) -> Vec<String> {
    let Ok(dir) = fs::read_dir(env.backups()) else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

#[test]
fn encrypted_round_trip_is_byte_identical_and_the_bucket_holds_ciphertext() {
    let Some(server) = Server::get("encrypted_round_trip_is_byte_identical") else {
        return;
    };
    let (here, recipient, archive) = sealed_backup(&server);
    let original = snapshot(&here.results().join("s"));
    let out = here.run(&["push", &archive, R, REMOTE]);
    assert!(out.contains(&format!("{archive}.age")), "{out}");
    let remote = server.remote();
    assert_eq!(remote.stat(&archive).unwrap(), None, "no plaintext object");
    let sealed = object_bytes(&server, &format!("{archive}.age"));
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    // The sample's metrics.json holds a sharpe: the results stay out of the plaintext entry.
    let entry = String::from_utf8(object_bytes(&server, &format!("{archive}.entry.yaml"))).unwrap();
    assert!(
        entry.contains(&archive) && !entry.contains("sharpe"),
        "{entry}"
    );
    let plain = fs::read(here.backups().join(&archive)).unwrap();
    assert!(
        !sealed
            .windows(64)
            .any(|w| plain.windows(64).next() == Some(w))
    );

    let there = Env::new();
    configure_sealed(&server, &there, &recipient);
    share_key(&here, &there);
    there.run(&["pull", &archive, R, REMOTE]);
    assert_eq!(
        sha256_file(&there.backups().join(&archive)),
        sha256_file(&here.backups().join(&archive))
    );
    // The metrics stay out of the plaintext entry: a pulled backup is catalogued without them
    // or their digest (its index travels, encrypted).
    let mut pushed = here.manifest()["backups"].clone();
    for entry in pushed.as_sequence_mut().unwrap() {
        let digest = entry.as_mapping_mut().unwrap().remove("metrics_sha256");
        assert!(digest.is_some(), "{entry:?}");
    }
    assert_eq!(there.manifest()["backups"], pushed);

    let third = Env::new();
    configure_sealed(&server, &third, &recipient);
    share_key(&here, &third);
    let out = third.run(&["restore", &archive, R, REMOTE]);
    assert!(out.contains("Restored "), "{out}");
    assert_eq!(snapshot(&third.results().join("s")), original);
}

#[test]
fn verify_checks_ciphertext_without_a_key_and_decrypts_with_deep() {
    let Some(server) = Server::get("verify_checks_ciphertext_without_a_key") else {
        return;
    };
    let (here, recipient, archive) = sealed_backup(&server);
    here.run(&["push", "--all", R, REMOTE]);

    let keyless = Env::new();
    server.configure_with(&keyless, &format!("recipients = [{recipient:?}]\n"));
    let out = keyless.run(&["verify", R, REMOTE]);
    assert!(out.contains(&format!("OK      {archive}")), "{out}");
    let err = keyless.fail(&["verify", R, REMOTE, "--deep"], 2);
    assert!(err.contains("no identity"), "{err}");
    let out = here.run(&["verify", R, REMOTE, "--deep"]);
    assert!(out.contains(&format!("OK      {archive}")), "{out}");

    let object = format!("{archive}.age");
    let mut sealed = object_bytes(&server, &object);
    let last = sealed.len() - 10;
    sealed[last] ^= 0x55;
    server.remote().put_object(&object, sealed).unwrap();
    let out = stdout(&keyless.run_code(&["verify", R, REMOTE], 1));
    assert!(
        out.contains(&format!("FAILED  {archive}: SHA-256 mismatch")),
        "{out}"
    );
    let out = stdout(&here.run_code(&["verify", R, REMOTE, "--deep"], 1));
    assert!(out.contains(&format!("FAILED  {archive}")), "{out}");
    let there = Env::new();
    configure_sealed(&server, &there, &recipient);
    share_key(&here, &there);
    there.fail(&["pull", &archive, R, REMOTE], 1);
    assert_eq!(strays(&there), Vec::<String>::new(), "{}", there.tree());
}

#[test]
fn a_wrong_or_missing_identity_is_one_line_and_leaves_nothing() {
    let Some(server) = Server::get("a_wrong_or_missing_identity_is_one_line") else {
        return;
    };
    let (here, recipient, archive) = sealed_backup(&server);
    here.run(&["push", "--all", R, REMOTE]);

    let there = Env::new();
    new_key(&there);
    configure_sealed(&server, &there, &recipient);
    let err = there.fail(&["pull", &archive, R, REMOTE], 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot decrypt") && err.contains("X25519") && err.contains(KEY),
        "{err}"
    );
    assert_eq!(strays(&there), Vec::<String>::new(), "{}", there.tree());
    let err = there.fail(&["restore", &archive, R, REMOTE], 2);
    assert!(err.contains("X25519"), "{err}");
    assert!(!there.results().join("s").exists());

    let keyless = Env::new();
    server.configure_with(&keyless, &format!("recipients = [{recipient:?}]\n"));
    let err = keyless.fail(&["pull", &archive, R, REMOTE], 2);
    assert!(
        err.contains("no identity") && err.lines().count() == 1,
        "{err}"
    );
    let out = keyless
        .cmd(&["pull", &archive, R, REMOTE])
        .env("RESBAK_AGE_IDENTITY", here.path().join(KEY))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plaintext_push_is_refused_without_encrypt_false() {
    let Some(server) = Server::get("plaintext_push_is_refused_without_encrypt_false") else {
        return;
    };
    let env = Env::new();
    server.configure_with(&env, "");
    env.sample("s");
    let archive = env.backup("s");
    let err = env.fail(&["push", "--all", R, REMOTE], 2);
    assert!(
        err.contains("encrypt = false") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(server.remote().stat(&archive).unwrap(), None);
    env.run(&["list", R, REMOTE]);
    server.configure_with(&env, "encrypt = true\n");
    let err = env.fail(&["list", R, REMOTE], 2);
    assert!(err.contains("needs recipients"), "{err}");
}

#[test]
fn the_age_tool_reads_what_resbak_pushed_and_resbak_reads_what_age_made() {
    let Some(server) = Server::get("the_age_tool_reads_what_resbak_pushed") else {
        return;
    };
    if !have("age") {
        if std::env::var_os("CI").is_some() {
            panic!("the age tool is missing; .ci/run installs it");
        }
        crate::s3::skipped("the_age_tool_reads_what_resbak_pushed", "no age tool");
        return;
    }
    let (here, recipient, archive) = sealed_backup(&server);
    let original = snapshot(&here.results().join("s"));
    here.run(&["push", "--all", R, REMOTE]);
    let sealed = here.path().join("copy.age");
    fs::write(&sealed, object_bytes(&server, &format!("{archive}.age"))).unwrap();
    let out_dir = here.path().join("by-age");
    fs::create_dir(&out_dir).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("age -d -i {KEY} copy.age | tar -xzf - -C by-age"))
        .current_dir(here.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(snapshot(&out_dir.join("s")), original);

    // The other way: age encrypts a backup, resbak pulls and restores it.
    let made = Env::new();
    made.sample("t");
    let other = made.backup("t");
    let local = made.backups().join(&other);
    let by_age = made.path().join("made.age");
    let status = Command::new("age")
        .args(["-r", &recipient, "-o"])
        .arg(&by_age)
        .arg(&local)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = fs::read(&by_age).unwrap();
    let entry: resbak::manifest::Entry =
        serde_yaml::from_value(made.manifest()["backups"][0].clone()).unwrap();
    let sidecar = Sidecar {
        entry,
        sealed: Some(Sealed {
            format: "age".into(),
            size: bytes.len() as u64,
            sha256: crate::util::sha256_file(&by_age),
        }),
        index: None,
    };
    let remote = server.remote();
    remote.put_object(&format!("{other}.age"), bytes).unwrap();
    remote.write_entry(&sidecar).unwrap();
    let there = Env::new();
    configure_sealed(&server, &there, &recipient);
    share_key(&here, &there);
    there.run(&["restore", &other, R, REMOTE]);
    assert_eq!(
        sha256_file(&there.backups().join(&other)),
        sha256_file(&local)
    );
    assert_eq!(
        snapshot(&there.results().join("t")),
        snapshot(&made.results().join("t"))
    );
}

#[test]
fn hostile_sidecars_never_reach_the_manifest_or_a_path() {
    let Some(server) = Server::get("hostile_sidecars_never_reach_the_manifest") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    let archive = env.backup("s");
    env.run(&["push", "--all", R, REMOTE]);
    let remote = server.remote();
    let sidecar = remote.read_entry(&archive).unwrap().unwrap();
    let entry_object = format!("{archive}.entry.yaml");
    let text = sidecar.render().unwrap();
    let hostile = [
        text.replace("strategy: s\n", "strategy: \"s\\e[2J\"\n"),
        text.replace(&sidecar.entry.sha256, "zz"),
        text.replace(
            &format!("backup_file: {archive}"),
            "backup_file: ../evil.tar.gz",
        ),
    ];
    for bad in hostile {
        assert_ne!(bad, text);
        remote.put_object(&entry_object, bad.clone()).unwrap();
        let there = Env::new();
        server.configure(&there);
        let out = there.cmd(&["pull", &archive, R, REMOTE]).output().unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains('\u{1b}'), "{err}");
        assert!(!there.backups().join("manifest.yaml").exists(), "{bad}");
        let out = there.run_code(&["list", R, REMOTE], 0);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("skipping"), "{bad}\n{err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
        let out = stdout(&there.run_code(&["verify", R, REMOTE], 1));
        assert!(out.contains("FAILED"), "{out}");
    }
}

#[test]
fn two_pushes_of_one_name_never_both_pass_unnoticed() {
    let Some(server) = Server::get("two_pushes_of_one_name_never_both_pass_unnoticed") else {
        return;
    };
    let machines = [Env::new(), Env::new()];
    let mut archive = String::new();
    for (i, env) in machines.iter().enumerate() {
        server.configure(env);
        crate::util::write(&env.results().join("s/data.txt"), &format!("machine {i}\n"));
        let made = env.backup("s");
        if i == 0 {
            archive = made;
        } else if made != archive {
            // The same name, other bytes: as if both machines backed up in the same second.
            let manifest = env.backups().join("manifest.yaml");
            let text = fs::read_to_string(&manifest)
                .unwrap()
                .replace(&made, &archive);
            fs::rename(env.backups().join(&made), env.backups().join(&archive)).unwrap();
            let stamp = |n: &str| {
                n.trim_start_matches("s_")
                    .trim_end_matches(".tar.gz")
                    .to_string()
            };
            fs::write(&manifest, text.replace(&stamp(&made), &stamp(&archive))).unwrap();
        }
    }
    let outputs = crate::remote::push_all_at_once(&machines);
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    assert!(
        codes.iter().all(|c| matches!(c, Some(0 | 1))),
        "{codes:?}\n{}",
        outputs
            .iter()
            .map(|o| format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr)))
            .collect::<String>()
    );
    let push_failed = codes.contains(&Some(1));
    let verified: Vec<Option<i32>> = machines
        .iter()
        .map(|env| {
            env.cmd(&["verify", R, REMOTE])
                .output()
                .unwrap()
                .status
                .code()
        })
        .collect();
    let listed_conflict = machines.iter().any(|env| {
        env.cmd(&["list", R, REMOTE])
            .output()
            .unwrap()
            .status
            .code()
            == Some(1)
    });
    eprintln!(
        "two pushes of one name: push exit codes {codes:?}, verify --remote exit codes {verified:?}"
    );
    assert!(
        verified.contains(&Some(1)) && listed_conflict,
        "one machine's backup was replaced and verify --remote or list --remote does not say so"
    );
    assert!(
        push_failed || verified.contains(&Some(0)),
        "the remote holds one of the two backups, whole"
    );
}

#[test]
fn key_generate_writes_a_private_file_once() {
    let env = Env::new();
    let recipient = new_key(&env);
    assert!(recipient.starts_with("age1"), "{recipient}");
    let path = env.path().join(KEY);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = fs::read(&path).unwrap();
    let before_files = crate::util::paths(env.path());
    for _ in 0..2 {
        let out = env.run_code(&["key", "generate", KEY], 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.stdout.is_empty(), "{}", stdout(&out));
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(KEY) && err.contains("already exists"), "{err}");
        assert!(
            !err.contains("age1") && !err.contains("second copy"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(
            crate::util::paths(env.path()),
            before_files,
            "{}",
            env.tree()
        );
    }
    let printed = env.run(&["key", "generate"]);
    assert!(printed.contains("AGE-SECRET-KEY-1"), "{printed}");
    assert!(!Path::new(&env.path().join("key")).exists());
}

#[test]
fn backup_pushes_each_new_backup_to_the_configured_remotes() {
    let Some(server) = Server::get("backup_pushes_each_new_backup") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    let out = env.run(&["backup", "s", "--push", REMOTE]);
    let archive = env.archives().remove(0);
    assert!(out.contains(&format!("Pushed {archive} -> s3://")), "{out}");
    assert!(server.remote().read_entry(&archive).unwrap().is_some());

    let config = env.path().join("resbak.toml");
    let table = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("push = [\"{REMOTE}\"]\n{table}")).unwrap();
    crate::util::write(&env.results().join("s/more.txt"), "more\n");
    let out = env.run(&["backup", "s"]);
    let newest = env.archives().pop().unwrap();
    assert_ne!(newest, archive);
    assert!(out.contains(&format!("Pushed {newest} -> s3://")), "{out}");
    assert!(!out.contains(&format!("Pushed {archive}")), "{out}");

    fs::write(&config, format!("push = [\"elsewhere\"]\n{table}")).unwrap();
    let err = env.fail(&["backup", "s", "--always"], 2);
    assert!(err.contains("elsewhere"), "{err}");
    server.configure_with(&env, "");
    let err = env.fail(&["backup", "s", "--always", "--push", REMOTE], 2);
    assert!(err.contains("encrypt = false"), "{err}");
    assert_eq!(
        env.archives().len(),
        2,
        "nothing is backed up before a refusal"
    );
}

/// `list --remote` over 1,000 backups: one listing (two pages of 1,000 keys), then the entries
/// read a few at a time. The server's own request log counts the requests.
#[test]
fn list_remote_lists_once_and_reads_a_thousand_entries() {
    const COUNT: usize = 1000;
    let Some(server) = Server::get("list_remote_lists_once_and_reads_a_thousand_entries") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    let archive = env.backup("s");
    let bytes = fs::read(env.backups().join(&archive)).unwrap();
    let template: resbak::manifest::Entry =
        serde_yaml::from_value(env.manifest()["backups"][0].clone()).unwrap();
    let names: Vec<String> = (0..COUNT)
        .map(|i| format!("s_20260101_{i:06}.tar.gz"))
        .collect();
    std::thread::scope(|scope| {
        for chunk in names.chunks(COUNT / 8) {
            let (server, bytes, template) = (&server, &bytes, &template);
            scope.spawn(move || {
                let remote = server.remote();
                for name in chunk {
                    let mut entry = template.clone();
                    entry.backup_file = name.clone();
                    entry.timestamp = name[2..17].to_string();
                    remote.put_object(name, bytes.clone()).unwrap();
                    let sidecar = Sidecar {
                        entry,
                        sealed: None,
                        index: None,
                    };
                    remote.write_entry(&sidecar).unwrap();
                }
            });
        }
    });
    let log = std::env::var("RESBAK_TEST_GARAGE_LOG").ok();
    let logged = || {
        log.as_ref()
            .map(|l| fs::read_to_string(l).unwrap_or_default())
    };
    let before = logged();
    let viewer = Env::new();
    server.configure(&viewer);
    let started = std::time::Instant::now();
    let out = viewer.run(&["list", R, REMOTE, "--json"]);
    let elapsed = started.elapsed();
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), COUNT);
    eprintln!(
        "list --remote of {COUNT} backups: {:.2} s",
        elapsed.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (before, logged()) {
        let new = &after[before.len().min(after.len())..];
        let prefix = server.prefix.replace('/', "%2F");
        let lists = new
            .lines()
            .filter(|l| l.contains("list-type=2") && l.contains(&prefix))
            .count();
        let reads = new
            .lines()
            .filter(|l| l.contains(" GET /") && l.contains(".entry.yaml"))
            .count();
        eprintln!("list --remote: {lists} listing requests, {reads} entry reads");
        assert_eq!(lists, 2, "one listing of 2,000 keys is two pages");
        assert!(reads >= COUNT, "{reads}");
    }
}

#[test]
fn prune_and_list_work_on_encrypted_copies() {
    let Some(server) = Server::get("prune_and_list_work_on_encrypted_copies") else {
        return;
    };
    let env = Env::new();
    let recipient = new_key(&env);
    configure_sealed(&server, &env, &recipient);
    env.sample("s");
    let old = env.backup("s");
    crate::util::write(&env.results().join("s/more.txt"), "more\n");
    let new = env.backup("s");
    env.run(&["push", "--all", R, REMOTE]);
    let out = env.run(&["list", R, REMOTE]);
    assert_eq!(out.matches("both").count(), 2, "{out}");
    env.run(&["prune", "--keep", "1", R, REMOTE]);
    let remote = server.remote();
    assert_eq!(remote.stat(&format!("{old}.age")).unwrap(), None);
    assert_eq!(remote.stat(&format!("{old}.entry.yaml")).unwrap(), None);
    assert!(remote.stat(&format!("{new}.age")).unwrap().is_some());
}

#[test]
fn an_ssh_ed25519_key_encrypts_and_decrypts() {
    let Some(server) = Server::get("an_ssh_ed25519_key_encrypts_and_decrypts") else {
        return;
    };
    if !have("ssh-keygen") {
        if std::env::var_os("CI").is_some() {
            panic!("ssh-keygen is missing; .ci/run installs it");
        }
        crate::s3::skipped("an_ssh_ed25519_key_encrypts_and_decrypts", "no ssh-keygen");
        return;
    }
    let here = Env::new();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "lab", "-f", "id_lab"])
        .current_dir(here.path())
        .status()
        .unwrap();
    assert!(status.success());
    let public = fs::read_to_string(here.path().join("id_lab.pub")).unwrap();
    server.configure_with(
        &here,
        &format!(
            "recipients = [{:?}]\nidentity_file = \"id_lab\"\n",
            public.trim()
        ),
    );
    here.sample("s");
    let archive = here.backup("s");
    here.run(&["push", "--all", R, REMOTE]);
    let sealed = object_bytes(&server, &format!("{archive}.age"));
    assert!(sealed.windows(14).any(|w| w == b"-> ssh-ed25519"));
    let there = Env::new();
    fs::copy(here.path().join("id_lab"), there.path().join("id_lab")).unwrap();
    fs::copy(
        here.path().join("resbak.toml"),
        there.path().join("resbak.toml"),
    )
    .unwrap();
    there.run(&["pull", &archive, R, REMOTE]);
    assert_eq!(
        sha256_file(&there.backups().join(&archive)),
        sha256_file(&here.backups().join(&archive))
    );
}
