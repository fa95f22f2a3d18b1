//! An interrupted push aborts its multipart upload: no parts stay on the server.
//!
//! It counts the unfinished multipart uploads of the whole test bucket (Garage's admin API), so
//! it is a test binary of its own: cargo runs test binaries one after another, never beside the
//! integration tests that upload large archives. Keep it to one test for the same reason.

#[allow(dead_code)]
mod datagen;
#[allow(dead_code)]
mod s3;
#[allow(dead_code)]
mod util;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use s3::{REMOTE, Server, skipped, write_noise};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;
use util::Env;

/// Garage's admin API, from `.ci/garage-start`'s variables.
struct Admin {
    endpoint: String,
    token: String,
}

impl Admin {
    fn get(test: &str) -> Option<Admin> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(endpoint), Some(token)) = (
            var("RESBAK_TEST_GARAGE_ADMIN_ENDPOINT"),
            var("RESBAK_TEST_GARAGE_ADMIN_TOKEN"),
        ) else {
            let why = "no Garage admin API (RESBAK_TEST_GARAGE_ADMIN_ENDPOINT and \
                       RESBAK_TEST_GARAGE_ADMIN_TOKEN are not set)";
            assert!(std::env::var_os("CI").is_none(), "{test}: {why}");
            skipped(test, why);
            return None;
        };
        let endpoint = endpoint.trim_start_matches("http://").to_string();
        Some(Admin { endpoint, token })
    }

    /// Unfinished multipart uploads in `bucket` and their parts.
    fn unfinished(&self, bucket: &str) -> (u64, u64) {
        let mut stream = TcpStream::connect(&self.endpoint).unwrap();
        let request = format!(
            "GET /v2/GetBucketInfo?globalAlias={bucket} HTTP/1.0\r\nHost: {}\r\n\
             Authorization: Bearer {}\r\n\r\n",
            self.endpoint, self.token
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        let info: serde_json::Value = serde_json::from_str(body).unwrap();
        let count = |key: &str| info[key].as_u64().unwrap_or_else(|| panic!("{answer}"));
        (
            count("unfinishedMultipartUploads"),
            count("unfinishedMultipartUploadParts"),
        )
    }
}

/// Waits (polling the server) for an observable state, failing the test after `limit`.
fn wait(what: &str, limit: Duration, ready: impl FnMut() -> bool) {
    util::wait_within(what, limit, Duration::from_millis(5), ready);
}

#[test]
fn an_interrupted_push_aborts_its_multipart_upload() {
    let test = "an_interrupted_push_aborts_its_multipart_upload";
    let Some(server) = Server::get(test) else {
        return;
    };
    let Some(admin) = Admin::get(test) else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    write_noise(&env.results().join("big/book.bin"), 7, 160 << 20);
    env.run(&["backup", "big", "--level", "0"]);
    std::fs::remove_dir_all(env.results().join("big")).unwrap();
    let before = admin.unfinished(&server.bucket);

    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let mut push = env
            .cmd(&["push", "--all", "--remote", REMOTE])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait("a part to land", Duration::from_secs(120), || {
            assert!(
                push.try_wait().unwrap().is_none(),
                "the push ended before it could be interrupted"
            );
            admin.unfinished(&server.bucket).1 > before.1
        });
        kill(Pid::from_raw(push.id() as i32), signal).unwrap();
        let out = push.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(128 + signal as i32), "{err}");
        assert!(err.contains("interrupted"), "{err}");
        assert!(!err.contains("could not abort"), "{err}");
        // The server updates these counts in the background (under load, after resbak has
        // exited): they must come back to what they were, and a part that stays never does.
        let gone = format!("{signal}: the upload's parts to be gone from the server");
        wait(&gone, Duration::from_secs(60), || {
            admin.unfinished(&server.bucket) == before
        });
    }
    assert!(server.remote().catalogue().unwrap().entries.is_empty());
}
