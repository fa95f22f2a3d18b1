//! Realistic results folders for tests and benchmarks, from a seed: the same seed, size and
//! strategy name always give the same bytes, names and mtimes.
//!
//! `STRATEGY/` holds what a backtest leaves behind: a combined trade log and a one-minute
//! equity curve (CSV), `stats.json` with backtesting.py's keys, `config.json`, PNG "plots"
//! (random bytes behind a PNG header, so they hardly compress), a `runs/` parameter sweep with
//! one folder per run (its own params, stats, trades, equity, log, plot and daily P&L files), a
//! symlink to the best run's stats and an empty folder. About a quarter of the bytes are
//! incompressible; the text compresses 3 to 6 times, like real output.
//!
//! Files are written through a small buffer, so memory stays flat from KiB to GiB. The total
//! is the requested size exactly, unless that is smaller than the smallest sensible tree.
//!
//! Shared by the integration tests and `examples/make_results.rs` (the benchmark's data).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Every file's mtime is this (2024-06-01 00:00:00 UTC) plus its index; folders get this.
pub const MTIME: u64 = 1_717_200_000;

/// SplitMix64: a tiny deterministic generator, so every case can be replayed from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` must not be zero.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// What to generate.
pub struct Spec {
    /// Total bytes of file content.
    pub size: u64,
    pub seed: u64,
    /// About this many files, all small (no big trade log, curve or plot); `None`: a mix of a
    /// few big files and many small ones, about 5 files per MiB.
    pub files: Option<u64>,
}

/// What was generated.
pub struct Made {
    pub root: PathBuf,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    Trades,
    Equity,
    /// P&L of the day, in days since 1970.
    Daily(i64),
    Log,
    Png,
    Config,
    Params(u32, u32),
    Stats(u32, u32),
}

struct Planned {
    rel: String,
    kind: Kind,
    /// Bytes to write; JSON files have their natural size.
    size: u64,
}

/// Daily P&L files per run folder.
const DAILY_PER_RUN: u64 = 18;
/// Files in a run folder besides the daily ones.
const RUN_FILES: u64 = 6;
/// The smallest a sized file gets: a header and a row or two.
const MIN_FILE: u64 = 160;

/// Writes `out/strategy/` (which must not exist yet) after `spec`.
pub fn generate(out: &Path, strategy: &str, spec: &Spec) -> io::Result<Made> {
    let root = out.join(strategy);
    if root.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists already", root.display()),
        ));
    }
    fs::create_dir_all(&root).map_err(|e| at_path(e, &root))?;
    let mut rng = Rng(spec.seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let (plan, best) = plan(spec, &mut rng);
    let symbol = symbol(strategy);
    let mut dirs = std::collections::BTreeSet::new();
    dirs.insert(root.clone());
    let mut written = 0;
    let last = plan.len() - 1;
    for (i, item) in plan.iter().enumerate() {
        let path = root.join(&item.rel);
        let parent = path.parent().unwrap().to_path_buf();
        if !dirs.contains(&parent) {
            fs::create_dir_all(&parent).map_err(|e| at_path(e, &parent))?;
            for dir in parent.ancestors().take_while(|d| *d != root) {
                dirs.insert(dir.to_path_buf());
            }
        }
        // The last file (the combined trade log) takes what is left of the budget.
        let size = if i == last {
            spec.size.saturating_sub(written).max(MIN_FILE)
        } else {
            item.size
        };
        let file = File::create(&path).map_err(|e| at_path(e, &path))?;
        let mut w = Sized {
            w: BufWriter::with_capacity(256 << 10, file),
            left: size,
            done: 0,
        };
        match item.kind {
            Kind::Trades => trades(&mut w, &mut rng, &symbol)?,
            Kind::Equity => equity(&mut w, &mut rng)?,
            Kind::Daily(day) => daily(&mut w, &mut rng, day)?,
            Kind::Log => log(&mut w, &mut rng, &symbol)?,
            Kind::Png => png(&mut w, &mut rng)?,
            Kind::Config => w.json(&config(&mut rng, strategy, &symbol, spec.seed))?,
            Kind::Params(fast, slow) => w.json(&params(&mut rng, fast, slow))?,
            Kind::Stats(fast, slow) => w.json(&stats(&mut rng, fast, slow))?,
        }
        written += w.done;
        let file = w.w.into_inner().map_err(|e| e.into_error())?;
        file.set_modified(at(MTIME + i as u64))?;
    }
    // A link to the best run's stats, and a folder that stays empty.
    let link = root.join("best_stats.json");
    std::os::unix::fs::symlink(&best, &link)?;
    let fixed = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: MTIME as i64,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: MTIME as i64,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        &link,
        &fixed,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    let empty = root.join("cache");
    fs::create_dir(&empty)?;
    dirs.insert(empty);
    // Deepest first, so that setting a folder's time does not change its parent's.
    for dir in dirs.iter().rev() {
        File::open(dir)?.set_modified(at(MTIME))?;
    }
    Ok(Made {
        root,
        files: plan.len() as u64,
        dirs: dirs.len() as u64,
        bytes: written,
    })
}

/// `e` with the path it happened at.
fn at_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// A ticker for the strategy: its first word, upper case, against USDT.
fn symbol(strategy: &str) -> String {
    let word: String = strategy
        .split(['_', '-', '.'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let word = if word.is_empty() { "BTC".into() } else { word };
    format!("{}USDT", word.to_ascii_uppercase())
}

/// Which files, how big, and the best run's stats (a link points there). JSON is small and
/// sized by its content; the rest share the budget.
fn plan(spec: &Spec, rng: &mut Rng) -> (Vec<Planned>, String) {
    let many_small = spec.files.is_some();
    let n_files = spec.files.unwrap_or((spec.size / (1 << 20) * 5).max(50));
    let per_run = RUN_FILES + DAILY_PER_RUN;
    let n_runs = (n_files.saturating_sub(6) / per_run).max(1);
    let extra_daily = n_files.saturating_sub(6 + n_runs * per_run);
    // The top-level trade log, curve and plots: half the bytes, or a twentieth with many small
    // files (and no big plots).
    let top = if many_small {
        spec.size / 20
    } else {
        spec.size / 2
    };
    let top_plots = if many_small { 0 } else { top * 3 / 10 };
    let curve = top * 3 / 10;
    // JSON: about 1.4 KiB a run and 1.6 KiB at the top.
    let runs_budget = spec.size.saturating_sub(top + 1600 + n_runs * 1400);
    let per_run_bytes = runs_budget / n_runs;
    // Daily files are 1 to 5 KiB, scaled down when the budget is tight.
    let daily_avg = 3000f64.min(0.4 * per_run_bytes as f64 / DAILY_PER_RUN as f64);
    let rest = per_run_bytes.saturating_sub((daily_avg * DAILY_PER_RUN as f64) as u64) as f64;
    let shares = [
        ("trades.csv", Kind::Trades, 0.40),
        ("equity.csv", Kind::Equity, 0.25),
        ("plots/equity.png", Kind::Png, 0.20),
        ("run.log", Kind::Log, 0.15),
    ];
    let sized = |x: f64| (x as u64).max(MIN_FILE);
    let sweep = |r: u64| (5 + 5 * (r % 8) as u32, 50 + 10 * ((r / 8) % 30) as u32);
    let run_name = |r: u64| {
        let (fast, slow) = sweep(r);
        format!("runs/{r:04}_sma{fast}_{slow}")
    };
    let best = rng.below(n_runs as usize) as u64;
    let (best_fast, best_slow) = sweep(best);

    let mut files = vec![
        Planned {
            rel: "config.json".into(),
            kind: Kind::Config,
            size: 0,
        },
        Planned {
            rel: "stats.json".into(),
            kind: Kind::Stats(best_fast, best_slow),
            size: 0,
        },
    ];
    for r in 0..n_runs {
        let (fast, slow) = sweep(r);
        let run = run_name(r);
        files.push(Planned {
            rel: format!("{run}/params.json"),
            kind: Kind::Params(fast, slow),
            size: 0,
        });
        files.push(Planned {
            rel: format!("{run}/stats.json"),
            kind: Kind::Stats(fast, slow),
            size: 0,
        });
        let jitter: Vec<f64> = shares.iter().map(|_| rng.uniform(0.5, 1.5)).collect();
        let norm: f64 = shares.iter().zip(&jitter).map(|(s, j)| s.2 * j).sum();
        for ((name, kind, share), j) in shares.iter().zip(&jitter) {
            files.push(Planned {
                rel: format!("{run}/{name}"),
                kind: *kind,
                size: sized(rest * share * j / norm),
            });
        }
        let first_day = days_from_civil(2024, 1, 1) + (r % 300) as i64;
        for k in 0..DAILY_PER_RUN + u64::from(r < extra_daily) {
            files.push(Planned {
                rel: format!("{run}/daily/pnl_{}.csv", date(first_day + k as i64)),
                kind: Kind::Daily(first_day + k as i64),
                size: sized(daily_avg * rng.uniform(0.4, 1.6)),
            });
        }
    }
    if !many_small {
        for (name, share) in [("heatmap", 0.6), ("equity", 0.25), ("drawdown", 0.15)] {
            files.push(Planned {
                rel: format!("plots/{name}.png"),
                kind: Kind::Png,
                size: sized(top_plots as f64 * share),
            });
        }
    }
    files.push(Planned {
        rel: "equity_curve.csv".into(),
        kind: Kind::Equity,
        size: sized(curve as f64),
    });
    // Last: `generate` gives it what is left of the budget.
    files.push(Planned {
        rel: "trades.csv".into(),
        kind: Kind::Trades,
        size: 0,
    });
    (files, format!("{}/stats.json", run_name(best)))
}

/// A file writer that stops at its size, cutting the last row short with a newline.
struct Sized {
    w: BufWriter<File>,
    /// Bytes still to write.
    left: u64,
    /// Bytes written.
    done: u64,
}

impl Sized {
    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)?;
        self.done += bytes.len() as u64;
        self.left = self.left.saturating_sub(bytes.len() as u64);
        Ok(())
    }

    /// Writes `row` or what fits of it; false once the file is full.
    fn put(&mut self, row: &[u8]) -> io::Result<bool> {
        if (row.len() as u64) < self.left {
            self.raw(row)?;
            return Ok(true);
        }
        let n = self.left as usize;
        if n > 0 {
            self.raw(&row[..n - 1])?;
            self.raw(b"\n")?;
        }
        Ok(false)
    }

    /// Writes a whole document, whatever its size.
    fn json(&mut self, text: &str) -> io::Result<()> {
        self.raw(text.as_bytes())
    }
}

// Plain number formatting into a row buffer: fast enough for GiB of CSV.

fn push_uint(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// `v / 10^decimals` with exactly `decimals` digits after the point.
fn push_fixed(buf: &mut Vec<u8>, v: i64, decimals: u32) {
    if v < 0 {
        buf.push(b'-');
    }
    let v = v.unsigned_abs();
    let scale = 10u64.pow(decimals);
    push_uint(buf, v / scale);
    if decimals > 0 {
        buf.push(b'.');
        let frac = v % scale;
        let mut div = scale / 10;
        while div > 0 {
            buf.push(b'0' + ((frac / div) % 10) as u8);
            div /= 10;
        }
    }
}

fn push2(buf: &mut Vec<u8>, v: u64) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// `YYYY-MM-DD HH:MM:SS` of a minute count since 1970, wrapped into 2017-2024 so that long
/// logs stay in the past.
fn push_minute(buf: &mut Vec<u8>, minute: i64) {
    const FIRST: i64 = 17_167 * 1440; // 2017-01-01
    const SPAN: i64 = 2922 * 1440; // to 2024-12-31
    let minute = FIRST + (minute - FIRST).rem_euclid(SPAN);
    let (y, m, d) = civil_from_days(minute.div_euclid(1440));
    let of_day = minute.rem_euclid(1440) as u64;
    push_uint(buf, y as u64);
    buf.push(b'-');
    push2(buf, m as u64);
    buf.push(b'-');
    push2(buf, d as u64);
    buf.push(b' ');
    push2(buf, of_day / 60);
    buf.push(b':');
    push2(buf, of_day % 60);
    buf.extend_from_slice(b":00");
}

fn date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A start minute somewhere in 2023-2024.
fn start_minute(rng: &mut Rng) -> i64 {
    (days_from_civil(2023, 1, 1) + rng.below(600) as i64) * 1440 + rng.below(1440) as i64
}

/// backtesting.py's trade table: one closed trade a row.
fn trades(w: &mut Sized, rng: &mut Rng, symbol: &str) -> io::Result<()> {
    let mut row = Vec::with_capacity(256);
    if !w.put(
        b"EntryTime,ExitTime,Symbol,Side,Size,EntryPrice,ExitPrice,PnL,ReturnPct,Commission,Tag\n",
    )? {
        return Ok(());
    }
    let mut minute = start_minute(rng);
    let mut price: i64 = 2_000_000 + rng.below(5_000_000) as i64; // cents
    let tags: [&[u8]; 4] = [b"sma_cross", b"sma_cross", b"stop_loss", b"take_profit"];
    loop {
        row.clear();
        minute += 1 + rng.below(90) as i64;
        let held = 1 + rng.below(600) as i64;
        let long = rng.next() & 1 == 0;
        let size = 100 + rng.below(99_900) as i64; // 1e-6 units
        let entry = price;
        price = (price + rng.below(40_001) as i64 - 20_000).max(100_000);
        let exit = price;
        let pnl = (exit - entry) * size / 1_000_000 * if long { 1 } else { -1 }; // cents
        let ret = (exit - entry) * 1_000_000 / entry * if long { 1 } else { -1 }; // 1e-4 %
        let fee = (entry + exit) * size / 1_000_000 / 1000;
        push_minute(&mut row, minute);
        row.push(b',');
        push_minute(&mut row, minute + held);
        row.push(b',');
        row.extend_from_slice(symbol.as_bytes());
        row.extend_from_slice(if long { b",Long," } else { b",Short," });
        push_fixed(&mut row, size, 6);
        row.push(b',');
        push_fixed(&mut row, entry, 2);
        row.push(b',');
        push_fixed(&mut row, exit, 2);
        row.push(b',');
        push_fixed(&mut row, pnl, 2);
        row.push(b',');
        push_fixed(&mut row, ret, 4);
        row.push(b',');
        push_fixed(&mut row, fee, 2);
        row.push(b',');
        row.extend_from_slice(tags[rng.below(tags.len())]);
        row.push(b'\n');
        minute += held;
        if !w.put(&row)? {
            return Ok(());
        }
    }
}

/// backtesting.py's equity curve: one bar a row, with the drawdown so far.
fn equity(w: &mut Sized, rng: &mut Rng) -> io::Result<()> {
    let mut row = Vec::with_capacity(128);
    if !w.put(b"Time,Equity,DrawdownPct,DrawdownDuration,Position\n")? {
        return Ok(());
    }
    let mut minute = start_minute(rng);
    let mut equity: i64 = 1_000_000; // cents
    let mut peak = equity;
    let mut since_peak = 0u64;
    let mut position: i64 = 0;
    loop {
        row.clear();
        minute += 1;
        equity = (equity + rng.below(2_001) as i64 - 995).max(1);
        if equity >= peak {
            peak = equity;
            since_peak = 0;
        } else {
            since_peak += 1;
        }
        if rng.below(60) == 0 {
            position = [-1, 0, 0, 1][rng.below(4)];
        }
        push_minute(&mut row, minute);
        row.push(b',');
        push_fixed(&mut row, equity, 2);
        row.push(b',');
        push_fixed(&mut row, (equity - peak) * 1_000_000 / peak, 4);
        row.push(b',');
        push_uint(&mut row, since_peak);
        row.push(b',');
        row.extend_from_slice(match position {
            -1 => b"-1",
            0 => b"0",
            _ => b"1",
        });
        row.push(b'\n');
        if !w.put(&row)? {
            return Ok(());
        }
    }
}

/// One day's P&L by bar.
fn daily(w: &mut Sized, rng: &mut Rng, day: i64) -> io::Result<()> {
    let mut row = Vec::with_capacity(96);
    if !w.put(b"Time,PnL,Trades,HitRate\n")? {
        return Ok(());
    }
    let mut minute = day * 1440;
    loop {
        row.clear();
        minute += 5;
        push_minute(&mut row, minute);
        row.push(b',');
        push_fixed(&mut row, rng.below(200_001) as i64 - 100_000, 2);
        row.push(b',');
        push_uint(&mut row, rng.below(12) as u64);
        row.push(b',');
        push_fixed(&mut row, rng.below(10_001) as i64, 4);
        row.push(b'\n');
        if !w.put(&row)? {
            return Ok(());
        }
    }
}

/// The engine's log: mostly fills, now and then a warning.
fn log(w: &mut Sized, rng: &mut Rng, symbol: &str) -> io::Result<()> {
    let mut row = Vec::with_capacity(160);
    let mut minute = start_minute(rng);
    loop {
        row.clear();
        minute += rng.below(3) as i64;
        push_minute(&mut row, minute);
        row.push(b'.');
        push_fixed(&mut row, rng.below(1000) as i64, 0);
        match rng.below(20) {
            0 => {
                row.extend_from_slice(b" WARN  broker: slippage above limit bps=");
                push_uint(&mut row, 5 + rng.below(40) as u64);
            }
            1 => {
                row.extend_from_slice(b" DEBUG strategy: sma fast=");
                push_fixed(&mut row, 2_000_000 + rng.below(5_000_000) as i64, 2);
                row.extend_from_slice(b" slow=");
                push_fixed(&mut row, 2_000_000 + rng.below(5_000_000) as i64, 2);
            }
            _ => {
                row.extend_from_slice(b" INFO  engine: order filled ");
                row.extend_from_slice(symbol.as_bytes());
                row.extend_from_slice(if rng.next() & 1 == 0 {
                    b" BUY qty="
                } else {
                    b" SELL qty="
                });
                push_fixed(&mut row, 100 + rng.below(99_900) as i64, 6);
                row.extend_from_slice(b" px=");
                push_fixed(&mut row, 2_000_000 + rng.below(5_000_000) as i64, 2);
                row.extend_from_slice(b" latency_us=");
                push_uint(&mut row, 40 + rng.below(900) as u64);
            }
        }
        row.push(b'\n');
        if !w.put(&row)? {
            return Ok(());
        }
    }
}

/// PNG signature, header chunk and end chunk around random bytes: a plot as far as
/// compression is concerned.
fn png(w: &mut Sized, rng: &mut Rng) -> io::Result<()> {
    let head = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x04\xb0\x00\x00\x02\x58\x08\x06\x00\x00\x00\x3a\x1c\x6f\x93";
    let tail = b"\x00\x00\x00\x00IEND\xaeB`\x82";
    w.raw(&head[..head.len().min(w.left as usize)])?;
    let tail = &tail[..tail.len().min(w.left as usize)];
    let mut body = w.left - tail.len() as u64;
    let mut buf = vec![0u8; 64 << 10];
    while body > 0 {
        let n = buf.len().min(body as usize);
        rng.fill(&mut buf[..n]);
        w.raw(&buf[..n])?;
        body -= n as u64;
    }
    w.raw(tail)
}

fn json_object(pairs: &[(&str, String)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("  \"{k}\": {v}"))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}

fn num(v: f64) -> String {
    format!("{v:.6}")
}

fn text(v: &str) -> String {
    serde_json::to_string(v).unwrap()
}

fn span(rng: &mut Rng, max_days: usize) -> String {
    let minutes = rng.below(max_days * 1440);
    text(&format!(
        "{} days {:02}:{:02}:00",
        minutes / 1440,
        minutes % 1440 / 60,
        minutes % 60
    ))
}

/// backtesting.py's statistics of one run.
fn stats(rng: &mut Rng, fast: u32, slow: u32) -> String {
    let ret = rng.uniform(-40.0, 120.0);
    let n_trades = 40 + rng.below(2000);
    let final_equity = 10_000.0 * (1.0 + ret / 100.0);
    json_object(&[
        ("Start", text("2024-01-01 00:00:00")),
        ("End", text("2024-12-31 23:59:00")),
        ("Duration", text("365 days 23:59:00")),
        ("Exposure Time [%]", num(rng.uniform(20.0, 95.0))),
        ("Equity Final [$]", num(final_equity)),
        ("Equity Peak [$]", num(final_equity * rng.uniform(1.0, 1.3))),
        ("Return [%]", num(ret)),
        ("Buy & Hold Return [%]", num(rng.uniform(-30.0, 150.0))),
        ("Return (Ann.) [%]", num(ret * rng.uniform(0.9, 1.1))),
        ("Volatility (Ann.) [%]", num(rng.uniform(10.0, 90.0))),
        ("Sharpe Ratio", num(rng.uniform(-1.0, 3.0))),
        ("Sortino Ratio", num(rng.uniform(-1.5, 5.0))),
        ("Calmar Ratio", num(rng.uniform(-0.5, 4.0))),
        ("Max. Drawdown [%]", num(-rng.uniform(3.0, 60.0))),
        ("Avg. Drawdown [%]", num(-rng.uniform(0.5, 8.0))),
        ("Max. Drawdown Duration", span(rng, 120)),
        ("Avg. Drawdown Duration", span(rng, 10)),
        ("# Trades", n_trades.to_string()),
        ("Win Rate [%]", num(rng.uniform(30.0, 65.0))),
        ("Best Trade [%]", num(rng.uniform(2.0, 25.0))),
        ("Worst Trade [%]", num(-rng.uniform(2.0, 20.0))),
        ("Avg. Trade [%]", num(rng.uniform(-0.5, 1.0))),
        ("Max. Trade Duration", span(rng, 30)),
        ("Avg. Trade Duration", span(rng, 2)),
        ("Profit Factor", num(rng.uniform(0.6, 2.5))),
        ("Expectancy [%]", num(rng.uniform(-0.5, 1.0))),
        ("SQN", num(rng.uniform(-2.0, 4.0))),
        ("Kelly Criterion", num(rng.uniform(-0.2, 0.4))),
        ("_strategy", text(&format!("SmaCross(n1={fast},n2={slow})"))),
    ])
}

fn params(rng: &mut Rng, fast: u32, slow: u32) -> String {
    json_object(&[
        ("n1", fast.to_string()),
        ("n2", slow.to_string()),
        (
            "stop_loss_pct",
            (0.5 * (1 + rng.below(8)) as f64).to_string(),
        ),
        ("take_profit_pct", (1 + rng.below(10)).to_string()),
        ("cash", "10000".into()),
        ("commission", "0.001".into()),
    ])
}

fn config(rng: &mut Rng, strategy: &str, symbol: &str, seed: u64) -> String {
    json_object(&[
        ("strategy", text(strategy)),
        ("symbol", text(symbol)),
        ("timeframe", text("1m")),
        ("start", text("2024-01-01")),
        ("end", text("2024-12-31")),
        ("cash", "10000".into()),
        ("commission", "0.001".into()),
        ("margin", "1.0".into()),
        ("trade_on_close", "false".into()),
        (
            "optimize",
            "{\"n1\": [5, 40, 5], \"n2\": [50, 340, 10]}".into(),
        ),
        ("maximize", text("Sharpe Ratio")),
        ("data_seed", seed.to_string()),
        ("engine_build", text(&format!("{:08x}", rng.next() as u32))),
    ])
}
