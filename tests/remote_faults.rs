//! Off-site copies when the server goes away: the Garage test server is killed in the middle of
//! a push and started again.
//!
//! This binary stops the shared test server, so it is a test target of its own: cargo runs test
//! binaries one after another, never beside the integration tests. Keep it to one test (or to
//! tests that cannot overlap) for the same reason.

#[allow(dead_code)]
mod datagen;
#[allow(dead_code)]
mod s3;
#[allow(dead_code)]
mod util;

use s3::{REMOTE, Server, skipped, write_noise};
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use util::{Env, stdout};

/// The local Garage the test may stop and start, from `.ci/garage-start`'s variables.
struct Garage {
    config: PathBuf,
    dir: PathBuf,
    s3_port: u16,
}

impl Garage {
    fn get(test: &str, server: &Server) -> Option<Garage> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(config), Some(dir)) = (
            var("RESBAK_TEST_GARAGE_CONFIG"),
            var("RESBAK_TEST_GARAGE_DIR"),
        ) else {
            let why = "the S3 server is not a Garage this test may restart \
                       (RESBAK_TEST_GARAGE_CONFIG and RESBAK_TEST_GARAGE_DIR are not set)";
            assert!(std::env::var_os("CI").is_none(), "{test}: {why}");
            skipped(test, why);
            return None;
        };
        let port = server.endpoint.rsplit(':').next().unwrap();
        Some(Garage {
            config: config.into(),
            dir: dir.into(),
            s3_port: port.trim_end_matches('/').parse().unwrap(),
        })
    }

    /// The running server's PID: the latest written to `garage.pid`, else the original one.
    fn pid(&self) -> String {
        fs::read_to_string(self.dir.join("garage.pid"))
            .ok()
            .or_else(|| std::env::var("RESBAK_TEST_GARAGE_PID").ok())
            .unwrap()
            .trim()
            .to_string()
    }

    /// Bytes under the data folder: grows as uploaded blocks are stored.
    fn data_bytes(&self) -> u64 {
        walkdir::WalkDir::new(self.dir.join("data"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }

    fn s3_answers(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok()
    }

    /// Kills the server outright (no graceful shutdown) and waits until its port is closed.
    fn kill(&self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.pid()])
            .status()
            .unwrap();
        assert!(status.success(), "could not kill garage");
        wait("the S3 port to close", Duration::from_secs(30), || {
            !self.s3_answers()
        });
    }

    /// Starts the server again on the same configuration, records its PID for `garage_stop`.
    /// The server outlives the test on purpose: whoever started the first one stops this one.
    #[allow(clippy::zombie_processes)]
    fn restart(&self) {
        let log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("garage.log"))
            .unwrap();
        let child = Command::new(garage_bin())
            .args([Path::new("-c"), &self.config, Path::new("server")])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        fs::write(self.dir.join("garage.pid"), format!("{}\n", child.id())).unwrap();
        wait("the S3 port to open", Duration::from_secs(60), || {
            self.s3_answers()
        });
    }
}

/// The garage binary: `GARAGE_BIN`, else `garage` on PATH, else cargo's bin folder.
fn garage_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("GARAGE_BIN") {
        return bin.into();
    }
    let on_path = Command::new("garage").arg("--version").output().is_ok();
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    match home {
        Some(home) if !on_path => home.join("bin/garage"),
        _ => PathBuf::from("garage"),
    }
}

/// Waits (polling the server) for an observable state, failing the test after `limit`.
fn wait(what: &str, limit: Duration, ready: impl FnMut() -> bool) {
    util::wait_within(what, limit, Duration::from_millis(5), ready);
}

#[test]
fn server_stopped_mid_push_leaves_nothing_and_a_second_push_completes() {
    let test = "server_stopped_mid_push_leaves_nothing_and_a_second_push_completes";
    let Some(server) = Server::get(test) else {
        return;
    };
    let Some(garage) = Garage::get(test, &server) else {
        return;
    };
    let env = Env::new();
    server.configure_with(&env, "retry_timeout_secs = 2\nencrypt = false\n");
    // Fresh bytes every run: Garage stores each distinct block once, so data it has seen
    // before would not show up as growth of its data folder.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    write_noise(&env.results().join("big/book.bin"), seed, 160 << 20);
    env.run(&["backup", "big", "--level", "0"]);
    fs::remove_dir_all(env.results().join("big")).unwrap();
    let archive = env.archives().remove(0);

    let before = garage.data_bytes();
    let mut push = env
        .cmd(&["push", "--all", "--remote", REMOTE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait(
        "part of the archive to land",
        Duration::from_secs(120),
        || {
            assert!(
                push.try_wait().unwrap().is_none(),
                "the push ended before the server could be stopped"
            );
            garage.data_bytes() > before + (16 << 20)
        },
    );
    garage.kill();
    let out = push.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}\n{err}", stdout(&out));
    eprintln!("push with the server killed:\n{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("resbak: remote test: ") && last.contains(&archive),
        "{err}"
    );

    garage.restart();
    let config = fs::read_to_string(env.path().join("resbak.toml")).unwrap();
    fs::write(
        env.path().join("resbak.toml"),
        config.replace("retry_timeout_secs = 2", "retry_timeout_secs = 30"),
    )
    .unwrap();
    let listing = env.run(&["list", "--remote", REMOTE, "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(rows[0]["status"], "local", "{listing}");
    assert_eq!(server.remote().stat(&archive).unwrap(), None, "visible");

    let out = env.run(&["push", "--all", "--remote", REMOTE]);
    assert!(out.contains(&format!("Pushed {archive}")), "{out}");
    let out = env.run(&["verify", "--remote", REMOTE]);
    assert!(out.contains(&format!("OK      {archive}")), "{out}");
}
