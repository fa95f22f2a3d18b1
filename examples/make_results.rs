//! Writes a realistic, deterministic results folder: `OUT_DIR/STRATEGY/`, for benchmarks and
//! manual trials. The same arguments always give the same bytes and mtimes.
//!
//!     cargo run --release --example make_results -- OUT_DIR --size 512M --seed 1 --strategy btc_sma
//!     cargo run --release --example make_results -- OUT_DIR --size 200M --files 50000

#![forbid(unsafe_code)]

#[path = "../tests/datagen.rs"]
mod datagen;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Write a realistic results folder (trade logs, equity curves, stats, plots, a parameter
/// sweep) of a given size from a seed.
#[derive(Parser)]
struct Args {
    /// Results folder to write into; STRATEGY/ inside it must not exist yet.
    out_dir: PathBuf,
    /// Total size of the files: bytes, or with K, M, G (KiB, MiB, GiB), e.g. 64K, 512M, 1G.
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    size: u64,
    /// Seed: another seed gives other content of the same shape.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Name of the strategy folder.
    #[arg(long, default_value = "btc_sma_cross")]
    strategy: String,
    /// About this many files, all small (no big trade log, curve or plots).
    #[arg(long)]
    files: Option<u64>,
    /// Print nothing.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("not a size: {text:?}"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(format!("unknown unit in {text:?}: use K, M or G")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("too large: {text:?}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let spec = datagen::Spec {
        size: args.size,
        seed: args.seed,
        files: args.files,
    };
    let start = Instant::now();
    if let Err(e) = std::fs::create_dir_all(&args.out_dir) {
        eprintln!("make_results: {}: {e}", args.out_dir.display());
        return ExitCode::FAILURE;
    }
    match datagen::generate(&args.out_dir, &args.strategy, &spec) {
        Ok(made) => {
            if !args.quiet {
                let secs = start.elapsed().as_secs_f64();
                let mib = made.bytes as f64 / f64::from(1 << 20);
                eprintln!(
                    "{}: {} files, {} folders, {mib:.1} MiB in {secs:.2} s ({:.0} MiB/s)",
                    made.root.display(),
                    made.files,
                    made.dirs,
                    mib / secs.max(1e-9)
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make_results: {e}");
            ExitCode::FAILURE
        }
    }
}
