//! The S3 test server the remote tests talk to, from the environment `.ci/garage-start` sets.
//!
//! Without a server the remote tests say loudly that they were skipped and pass; with `CI` set
//! a missing server fails them. Each test works under its own key prefix, so tests can share
//! one bucket and run in parallel.

use crate::util::{Env, noise};
use resbak::config::RemoteConfig;
use resbak::remote::{Credentials, Remote};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Variables naming the test server.
const VARS: [&str; 5] = [
    "RESBAK_TEST_S3_ENDPOINT",
    "RESBAK_TEST_S3_BUCKET",
    "RESBAK_TEST_S3_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
];

/// The name tests give their remote in `resbak.toml`.
pub const REMOTE: &str = "test";

/// An S3 server for one test, with a key prefix of its own.
pub struct Server {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub key_id: String,
    pub secret: String,
    pub prefix: String,
}

impl Server {
    /// The configured server, or `None` (after saying so on stderr) when there is none. In CI
    /// (`CI` set) a missing server fails the test.
    pub fn get(test: &str) -> Option<Server> {
        let values: Vec<Option<String>> = VARS
            .iter()
            .map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .collect();
        if values.iter().any(Option::is_none) {
            let missing: Vec<&str> = VARS
                .iter()
                .zip(&values)
                .filter(|(_, v)| v.is_none())
                .map(|(name, _)| *name)
                .collect();
            let why = format!(
                "no S3 test server (set RESBAK_TEST_S3_ENDPOINT, RESBAK_TEST_S3_BUCKET, \
                 RESBAK_TEST_S3_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, e.g. with \
                 eval \"$(.ci/garage-start)\"); missing: {}",
                missing.join(", ")
            );
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {why}; CI must run the remote tests");
            }
            skipped(test, &why);
            return None;
        }
        let mut values = values.into_iter().flatten();
        let mut next = || values.next().unwrap();
        Some(Server {
            endpoint: next(),
            bucket: next(),
            region: next(),
            key_id: next(),
            secret: next(),
            prefix: unique_prefix(test),
        })
    }

    /// The `[remote.test]` table for this server and prefix.
    pub fn config(&self) -> RemoteConfig {
        RemoteConfig {
            endpoint: Some(self.endpoint.clone()),
            bucket: self.bucket.clone(),
            prefix: Some(self.prefix.clone()),
            region: Some(self.region.clone()),
            allow_http: true,
            retry_timeout_secs: Some(20),
            encrypt: Some(false),
            ..RemoteConfig::default()
        }
    }

    /// Writes `resbak.toml` with a plaintext `[remote.test]` table into `env`'s folder.
    pub fn configure(&self, env: &Env) {
        self.configure_with(env, "encrypt = false\n");
    }

    /// Writes `resbak.toml` with the `[remote.test]` table and `extra` lines in it.
    pub fn configure_with(&self, env: &Env, extra: &str) {
        let c = self.config();
        let text = format!(
            "[remote.{REMOTE}]\nendpoint = {:?}\nbucket = {:?}\nprefix = {:?}\nregion = {:?}\n\
             allow_http = true\n{extra}",
            self.endpoint, c.bucket, self.prefix, self.region
        );
        fs::write(env.path().join("resbak.toml"), text).unwrap();
    }

    /// A library handle on the same remote, to look at or tamper with objects directly.
    pub fn remote(&self) -> Remote {
        let credentials = Credentials::new(self.key_id.clone(), self.secret.clone(), None);
        Remote::open(REMOTE, &self.config(), credentials).unwrap()
    }
}

/// Says on the real stderr (not captured by the test harness) that `test` did not run.
pub fn skipped(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// `resbak-tests/<test>-<time>-<pid>`: a prefix no other test run uses.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("resbak-tests/{test}-{nanos:x}-{}", std::process::id())
}

/// Writes `len` bytes of incompressible, deterministic data to `path`, a few MiB at a time.
pub fn write_noise(path: &Path, seed: u64, len: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let chunk = 4u64 << 20;
    let mut written = 0;
    while written < len {
        let n = chunk.min(len - written);
        file.write_all(&noise(seed.wrapping_add(written), n as usize))
            .unwrap();
        written += n;
    }
    file.flush().unwrap();
}

/// A finished command with its peak resident memory.
pub struct Measured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Highest `VmHWM` seen in `/proc/<pid>/status`, in KiB (the high-water mark, so the last
    /// sample before exit is the peak up to then).
    pub peak_kib: u64,
    pub elapsed: Duration,
}

/// Runs `cmd`, sampling its peak resident memory until it exits.
pub fn run_measured(mut cmd: Command) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Some(kib) = vm_hwm(&status_file) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Measured {
        status,
        stdout,
        stderr,
        peak_kib,
        elapsed,
    }
}

fn vm_hwm(status_file: &str) -> Option<u64> {
    let text = fs::read_to_string(status_file).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
