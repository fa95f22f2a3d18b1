//! A pull or `restore --remote` that fails leaves nothing it made behind: no backup folder,
//! no partial file, and an existing catalogue exactly as it was.

use crate::remote_crypto::{R, configure_sealed, new_key, object_bytes, share_key};
use crate::s3::{REMOTE, Server};
use crate::util::{Env, snapshot};
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

/// Pushes an encrypted backup of a sample from a new folder; the folder and the archive name.
fn pushed(server: &Server) -> (Env, String, String) {
    let here = Env::new();
    let recipient = new_key(&here);
    configure_sealed(server, &here, &recipient);
    here.sample("s");
    let archive = here.backup("s");
    here.run(&["push", &archive, R, REMOTE]);
    (here, archive, recipient)
}

/// Pull and `restore --remote` both fail with `code`; nothing is made in `env`.
fn fails_leaving_nothing(env: &Env, archive: &str, code: i32) {
    for args in [
        vec!["pull", archive, R, REMOTE],
        vec!["restore", archive, R, REMOTE],
    ] {
        let err = env.fail(&args, code);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!env.backups().exists(), "{args:?} left\n{}", env.tree());
        assert!(
            !env.results().join("s").exists(),
            "{args:?}: {}",
            env.tree()
        );
    }
}

/// The files of a snapshot (not folders, whose times change as temp files come and go), lock
/// files left out.
fn files(snapshot: &BTreeMap<PathBuf, String>) -> Vec<(&PathBuf, &String)> {
    let kept = |(p, d): &(&PathBuf, &String)| {
        d.starts_with("file") && !p.to_string_lossy().ends_with(".lock")
    };
    snapshot.iter().filter(kept).collect()
}

#[test]
fn a_wrong_identity_leaves_no_backup_folder() {
    let Some(server) = Server::get("a_wrong_identity_leaves_no_backup_folder") else {
        return;
    };
    let (_here, archive, recipient) = pushed(&server);
    let there = Env::new();
    new_key(&there);
    configure_sealed(&server, &there, &recipient);
    fails_leaving_nothing(&there, &archive, 2);
}

#[test]
fn damaged_ciphertext_leaves_no_folder_and_an_existing_catalogue_as_it_was() {
    let Some(server) = Server::get("damaged_ciphertext_leaves_no_folder") else {
        return;
    };
    let (here, archive, recipient) = pushed(&server);
    let object = format!("{archive}.age");
    let mut sealed = object_bytes(&server, &object);
    let at = sealed.len() - 100;
    sealed[at] ^= 0x40;
    server.remote().put_object(&object, sealed).unwrap();

    let there = Env::new();
    share_key(&here, &there);
    configure_sealed(&server, &there, &recipient);
    fails_leaving_nothing(&there, &archive, 1);

    there.sample("t");
    there.backup("t");
    let before = snapshot(&there.backups());
    for args in [
        vec!["pull", &archive, R, REMOTE],
        vec!["restore", &archive, R, REMOTE],
    ] {
        there.fail(&args, 1);
        assert_eq!(
            files(&before),
            files(&snapshot(&there.backups())),
            "{args:?}"
        );
    }
    assert!(
        fs::read_dir(there.results()).unwrap().count() == 1,
        "{}",
        there.tree()
    );
}
