//! Random access through the index beside an archive: `resbak ls`, `resbak cat`, `restore
//! --include` and `diff`, and the same without the index or with a damaged one.

use crate::util::{Env, flip_byte, sha256_file};
use std::fs;

/// The index file of the backup named `archive`.
fn index_of(env: &Env, archive: &str) -> std::path::PathBuf {
    env.backups().join(format!("{archive}.idx"))
}

/// A folder with the sample strategy `s` backed up once, and the name of that archive.
fn backed_up() -> (Env, String) {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    (env, archive)
}

/// Removes `index_sha256` from every manifest entry, as an older resbak wrote them.
fn drop_index_record(env: &Env) {
    let path = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("index_sha256:"))
        .collect();
    assert_ne!(kept.len(), text.lines().count(), "{text}");
    fs::write(&path, kept.join("\n") + "\n").unwrap();
}

/// Sets the manifest's `index_sha256` of every entry to `sha256`.
fn set_index_record(env: &Env, sha256: &str) {
    let path = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.split_once("index_sha256:") {
            Some((indent, _)) => format!("{indent}index_sha256: {sha256}"),
            None => l.to_string(),
        })
        .collect();
    fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn ls_and_cat_give_the_same_with_an_index_without_one_and_after_reindex() {
    let (env, archive) = backed_up();
    let listing = env.run(&["ls", "s"]);
    for path in [
        "trades.csv",
        "runs/fast10_slow50/params.json",
        "scripts/rerun.sh",
    ] {
        assert!(listing.contains(path), "{listing}");
    }
    assert!(listing.contains("-rwxr-x---"), "{listing}");
    let only = env.run(&["ls", &archive, "runs"]);
    assert!(only.lines().all(|l| l.contains("runs")), "{only}");
    assert_eq!(only.lines().count(), 5, "{only}");
    let want = fs::read(env.results().join("s/runs/fast10_slow50/trades.csv")).unwrap();
    let cat = |env: &Env| {
        let args = ["cat", "s", "runs/fast10_slow50/trades.csv"];
        env.run_code(&args, 0).stdout
    };
    assert_eq!(cat(&env), want);
    // Without an index (its file is gone, and so is the manifest's record of it), the whole
    // archive serves, quietly.
    fs::remove_file(index_of(&env, &archive)).unwrap();
    drop_index_record(&env);
    assert_eq!(env.run(&["ls", "s"]), listing);
    assert_eq!(cat(&env), want);
    let path = env.backups().join(&archive);
    assert_eq!(env.run(&["ls", path.to_str().unwrap()]), listing);
    // reindex builds an index again, recorded in the manifest.
    let out = env.run(&["reindex"]);
    assert!(out.contains(&format!("Indexed {archive}")), "{out}");
    assert!(env.manifest()["backups"][0]["index_sha256"].is_string());
    assert_eq!(env.run(&["ls", "s"]), listing);
    assert_eq!(cat(&env), want);
    env.run(&["verify"]);
}

#[test]
fn cat_refuses_folders_links_missing_paths_and_damaged_bytes() {
    let (env, archive) = backed_up();
    let err = env.fail(&["cat", "s", "runs"], 1);
    assert!(err.contains("a folder, not a file"), "{err}");
    let err = env.fail(&["cat", "s", "nope.csv"], 1);
    assert!(err.contains("no such entry"), "{err}");
    // A changed byte in the archive never passes as the file's content.
    let path = env.backups().join(&archive);
    let size = fs::metadata(&path).unwrap().len();
    for offset in [size / 3, size / 2, 2 * size / 3] {
        let before = fs::read(&path).unwrap();
        flip_byte(&path, offset);
        let out = env.cmd(&["cat", "s", "equity_curve.csv"]).output().unwrap();
        let want = fs::read(env.results().join("s/equity_curve.csv")).unwrap();
        assert!(
            out.status.code() == Some(1) || out.stdout == want,
            "offset {offset}"
        );
        fs::write(&path, before).unwrap();
    }
}

#[test]
fn diff_from_the_index_says_what_reading_the_whole_archive_says() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    crate::util::write(&root.join("trades.csv"), "id\n");
    fs::remove_file(root.join("metrics.json")).unwrap();
    crate::util::write(&root.join("new.txt"), "new\n");
    let diff =
        |env: &Env| String::from_utf8_lossy(&env.run_code(&["diff", "s"], 1).stdout).into_owned();
    let with_index = diff(&env);
    for line in ["~ trades.csv", "- metrics.json", "+ new.txt"] {
        assert!(with_index.contains(line), "{with_index}");
    }
    fs::remove_file(index_of(&env, &archive)).unwrap();
    assert_eq!(diff(&env), with_index);
    // A damaged archive is an error either way, never a list of changes.
    env.run(&["reindex"]);
    let path = env.backups().join(&archive);
    flip_byte(&path, 30);
    let err = env.fail(&["diff", "s"], 2);
    assert!(err.contains("SHA-256"), "{err}");
}

/// A damaged archive gives no bytes at all, with or without its index (the file is checked
/// before any byte reaches the output, so a redirect never keeps a wrong file).
#[test]
fn cat_of_a_damaged_archive_writes_nothing_with_or_without_an_index() {
    let env = Env::new();
    let root = env.sample("s");
    fs::write(root.join("big.bin"), crate::util::noise(7, 300_000)).unwrap();
    let archive = env.backup("s");
    let path = env.backups().join(&archive);
    let len = fs::metadata(&path).unwrap().len();
    flip_byte(&path, len / 2);
    for with_index in [true, false] {
        if !with_index {
            fs::remove_file(index_of(&env, &archive)).unwrap();
        }
        let out = env.cmd(&["cat", &archive, "big.bin"]).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "index: {with_index}");
        assert!(
            out.stdout.is_empty(),
            "index: {with_index}: {} bytes out",
            out.stdout.len()
        );
    }
}

/// An intact archive whose index is damaged or gone is a problem `verify` names, with the way
/// out; `reindex` builds the index again.
#[test]
fn verify_names_a_damaged_or_missing_index_and_reindex_builds_it_again() {
    let (env, archive) = backed_up();
    let index = index_of(&env, &archive);
    flip_byte(&index, 20);
    let out = crate::util::stdout(&env.run_code(&["verify", &archive], 1));
    assert!(
        out.contains("the archive is intact, but its index"),
        "{out}"
    );
    assert!(out.contains("is damaged; resbak reindex"), "{out}");
    fs::remove_file(&index).unwrap();
    let out = crate::util::stdout(&env.run_code(&["verify", "--deep", &archive], 1));
    assert!(out.contains("is missing"), "{out}");
    env.run(&["reindex"]);
    env.run(&["verify", "--deep", &archive]);
}

/// A damaged index (a changed byte, one that does not parse though the manifest records its
/// SHA-256, a missing file) is never used and never silently passed over: `ls` and `cat` read
/// the whole archive, give the same output, warn once naming the index and `resbak reindex`,
/// and exit 1.
#[test]
fn ls_and_cat_over_a_damaged_index_warn_read_the_whole_archive_and_exit_1() {
    let (env, archive) = backed_up();
    let index = index_of(&env, &archive);
    let listing = env.run(&["ls", "s"]);
    let json = env.run(&["--json", "ls", "s"]);
    let file = "runs/fast10_slow50/trades.csv";
    let want = fs::read(env.results().join("s").join(file)).unwrap();
    let damages: [(&str, &dyn Fn()); 3] = [
        ("changed byte", &|| flip_byte(&index, 20)),
        ("unparsable", &|| {
            let garbage = crate::util::gzip(b"not an index\n");
            fs::write(&index, garbage).unwrap();
            set_index_record(&env, &crate::util::sha256_file(&index));
        }),
        ("missing", &|| fs::remove_file(&index).unwrap()),
    ];
    let name = format!("{archive}.idx");
    for (what, damage) in damages {
        damage();
        let warned = |out: &std::process::Output| {
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(err.lines().count(), 1, "{what}: {err}");
            assert!(err.starts_with("resbak: warning: "), "{what}: {err}");
            assert!(
                err.contains(&name) && err.contains("resbak reindex"),
                "{what}: {err}"
            );
        };
        let out = env.run_code(&["ls", "s"], 1);
        assert_eq!(crate::util::stdout(&out), listing, "{what}");
        warned(&out);
        let out = env.run_code(&["--json", "ls", "s"], 1);
        assert_eq!(crate::util::stdout(&out), json, "{what}");
        warned(&out);
        let out = env.run_code(&["cat", "s", file], 1);
        assert_eq!(out.stdout, want, "{what}");
        warned(&out);
        env.run(&["reindex"]);
        env.run(&["verify", &archive]);
    }
}

/// With its index damaged, or none recorded, an archive swapped for another one never passes:
/// the whole archive read is checked against the manifest before `ls` or `cat` succeed.
#[test]
fn a_swapped_archive_never_lists_or_cats_with_exit_0_when_its_index_cannot_serve() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    crate::util::write(&root.join("trades.csv"), "id\n");
    crate::util::write(&root.join("other.csv"), "x\n");
    let second = env.backup("s");
    assert_ne!(first, second);
    let path = env.backups().join(&first);
    fs::copy(env.backups().join(&second), &path).unwrap();
    for recorded in [true, false] {
        if recorded {
            flip_byte(&index_of(&env, &first), 20);
        } else {
            drop_index_record(&env);
        }
        let out = env.cmd(&["ls", &first]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "recorded {recorded}: {err}");
        assert!(err.contains("SHA-256"), "recorded {recorded}: {err}");
        let out = env.cmd(&["--json", "ls", &first]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "recorded {recorded}");
        assert!(!crate::util::stdout(&out).contains("other.csv"));
        let out = env.cmd(&["cat", &first, "trades.csv"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "recorded {recorded}");
        assert!(out.stdout.is_empty(), "recorded {recorded}");
    }
}

/// A strategy `s` holding the sample and four files big enough for a segment each; returns its
/// archive's name.
fn with_big_files(env: &Env) -> String {
    let root = env.sample("s");
    fs::create_dir(root.join("big")).unwrap();
    for i in 0..4 {
        let path = root.join(format!("big/{i}.bin"));
        fs::write(path, crate::util::noise(i, 1_200_000)).unwrap();
    }
    env.backup("s")
}

/// Where the segment holding `rel` lies in the archive named `archive`: offset and length of
/// its compressed bytes, from the index.
fn segment_of(env: &Env, archive: &str, rel: &str) -> (u64, u64) {
    let mut text = String::new();
    let file = fs::File::open(index_of(env, archive)).unwrap();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text).unwrap();
    let fields = |l: &str| l.split('\t').map(str::to_string).collect::<Vec<_>>();
    let entry = text
        .lines()
        .map(fields)
        .find(|f| f[0] == "E" && f[7] == rel)
        .unwrap();
    let n: usize = entry[1].parse().unwrap();
    let segment = text
        .lines()
        .map(fields)
        .filter(|f| f[0] == "S")
        .nth(n)
        .unwrap();
    (segment[3].parse().unwrap(), segment[4].parse().unwrap())
}

/// Damages the archive named `archive` in the middle of the segment at `(zoff, zlen)`, and
/// records the damaged file's SHA-256 in the manifest: only reading that segment can find it.
fn damage_segment_behind_the_manifest(env: &Env, archive: &str, (zoff, zlen): (u64, u64)) {
    let path = env.backups().join(archive);
    let before = sha256_file(&path);
    flip_byte(&path, zoff + zlen / 2);
    let manifest = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    assert!(text.contains(&before));
    fs::write(&manifest, text.replace(&before, &sha256_file(&path))).unwrap();
}

/// With an intact index, `restore --include` inflates only the segments holding what it
/// includes (and the folders above): the report counts them, and a damaged segment it does
/// not need is never read, while one it needs fails the restore.
#[test]
fn restore_include_with_an_index_inflates_only_the_segments_it_needs() {
    let env = Env::new();
    let archive = with_big_files(&env);
    let want = fs::read(env.results().join("s/big/2.bin")).unwrap();
    let args = |to: &'static str, rel: &'static str| {
        ["--json", "restore", &archive, "--to", to, "--include", rel].map(str::to_string)
    };
    let run = |to, rel, code| {
        let args = args(to, rel);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run_code(&args, code)
    };
    // A whole restore reads every segment.
    let out = env.run_code(&["--json", "restore", &archive, "--to", "all"], 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["segments_read"], report["segments"], "{report}");
    let total = report["segments"].as_u64().unwrap();
    assert!(total >= 6, "{report}");

    let segment = segment_of(&env, &archive, "big/1.bin");
    damage_segment_behind_the_manifest(&env, &archive, segment);
    let out = run("part", "big/2.bin", 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["segments"].as_u64(), Some(total), "{report}");
    assert!(report["segments_read"].as_u64().unwrap() <= 3, "{report}");
    assert_eq!(fs::read(env.path().join("part/big/2.bin")).unwrap(), want);
    assert!(!env.path().join("part/big/1.bin").exists());
    assert!(!env.path().join("part/trades.csv").exists());
    let out = env.run(&[
        "-v",
        "restore",
        &archive,
        "--to",
        "v",
        "--include",
        "big/3.bin",
    ]);
    // Its two pieces (1 MiB, then the rest) and the segment of the folder above it.
    assert_eq!(pieces_of(&env, &archive, "big/3.bin").len(), 2);
    assert!(
        out.contains(&format!("Inflated 3 of {total} segments")),
        "{out}"
    );
    run("bad", "big/1.bin", 1);
    assert!(!env.path().join("bad").exists());
}

/// The segments of the group holding `rel` in the archive named `archive`: offset and length
/// of each piece's compressed bytes, from the index.
fn pieces_of(env: &Env, archive: &str, rel: &str) -> Vec<(u64, u64)> {
    let mut text = String::new();
    let file = fs::File::open(index_of(env, archive)).unwrap();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text).unwrap();
    let fields = |l: &str| l.split('\t').map(str::to_string).collect::<Vec<_>>();
    let lines: Vec<Vec<String>> = text.lines().map(fields).collect();
    let entry = lines.iter().find(|f| f[0] == "E" && f[7] == rel).unwrap();
    let head: usize = entry[1].parse().unwrap();
    let segments: Vec<&Vec<String>> = lines.iter().filter(|f| f[0] == "S").collect();
    let continues = segments[head + 1..]
        .iter()
        .take_while(|f| f[7] == "+")
        .count();
    segments[head..=head + continues]
        .iter()
        .map(|f| (f[3].parse().unwrap(), f[4].parse().unwrap()))
        .collect()
}

/// Bytes that do not inflate, met while `cat` copies a file out (in a piece after the one
/// holding the file's header), are a damaged archive (exit 1, naming it), not a failure to
/// write standard output (exit 2).
#[test]
fn cat_of_bytes_that_do_not_inflate_is_a_damaged_archive_not_a_write_error() {
    let env = Env::new();
    let root = env.sample("s");
    fs::write(root.join("big.bin"), crate::util::noise(5, 2_500_000)).unwrap();
    let archive = env.backup("s");
    let last = *pieces_of(&env, &archive, "big.bin").last().unwrap();
    damage_segment_behind_the_manifest(&env, &archive, last);
    let err = env.fail(&["cat", &archive, "big.bin"], 1);
    assert!(err.contains(&archive), "{err}");
    assert!(!err.contains("standard output"), "{err}");
}

/// `cat` from an archive cut short inside the file's pieces says the archive ends early, not
/// a bare "failed to fill whole buffer".
#[test]
fn cat_from_an_archive_cut_short_says_it_ends_early() {
    let env = Env::new();
    let root = env.sample("s");
    fs::write(root.join("big.bin"), crate::util::noise(6, 2_500_000)).unwrap();
    let archive = env.backup("s");
    let (zoff, zlen) = *pieces_of(&env, &archive, "big.bin").last().unwrap();
    let path = env.backups().join(&archive);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(zoff + zlen / 2)
        .unwrap();
    let err = env.fail(&["cat", &archive, "big.bin"], 1);
    assert!(err.contains("cut short"), "{err}");
    assert!(!err.contains("failed to fill whole buffer"), "{err}");
}

/// A name holding glob characters is not matched by itself as a pattern: `ls` and
/// `restore --include` say how to escape it, and the escaped pattern works.
#[test]
fn a_name_with_glob_characters_gets_its_escaped_pattern_suggested() {
    let env = Env::new();
    let root = env.sample("s");
    fs::write(root.join("q[1].csv"), "a,b\n").unwrap();
    let archive = env.backup("s");
    let err = env.fail(&["ls", &archive, "q[1].csv"], 1);
    assert!(err.contains("did you mean q[[]1[]].csv?"), "{err}");
    assert!(err.contains("escaped"), "{err}");
    let out = env.run(&["ls", &archive, "q[[]1[]].csv"]);
    assert!(out.contains("q[1].csv"), "{out}");
    let args = ["restore", &archive, "--to", "one", "--include", "q[1].csv"];
    let err = env.fail(&args, 1);
    assert!(err.contains("did you mean q[[]1[]].csv?"), "{err}");
    let args = [
        "restore",
        &archive,
        "--to",
        "two",
        "--include",
        "q[[]1[]].csv",
    ];
    env.run(&args);
    assert_eq!(
        fs::read_to_string(env.path().join("two/q[1].csv")).unwrap(),
        "a,b\n"
    );
}

/// Read whole (its index damaged), a damaged archive lists nothing: the listing is printed
/// only once the archive is checked against the manifest.
#[test]
fn ls_prints_nothing_of_an_archive_that_fails_its_check() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    flip_byte(&index_of(&env, &archive), 20);
    let path = env.backups().join(&archive);
    let len = fs::metadata(&path).unwrap().len();
    flip_byte(&path, len - 5);
    let out = env.cmd(&["ls", &archive]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A file longer than a piece (1 MiB) is cut into several segments that inflate apart: `cat`
/// and `restore --include` read them all and give the file back whole, and damage in any piece
/// but the first fails both.
#[test]
fn a_file_cut_into_pieces_reads_back_whole_and_damage_in_a_later_piece_is_found() {
    let env = Env::new();
    let root = env.sample("s");
    let want = crate::util::noise(11, 3_500_000);
    fs::write(root.join("long.bin"), &want).unwrap();
    let archive = env.backup("s");
    let pieces = pieces_of(&env, &archive, "long.bin");
    assert_eq!(pieces.len(), 4, "{pieces:?}");
    let out = env.run_code(&["cat", &archive, "long.bin"], 0);
    assert!(out.stdout == want);
    let out = env.run(&[
        "-v",
        "restore",
        &archive,
        "--to",
        "one",
        "--include",
        "long.bin",
    ]);
    assert!(out.contains("Inflated 5 of"), "{out}");
    assert!(fs::read(env.path().join("one/long.bin")).unwrap() == want);

    damage_segment_behind_the_manifest(&env, &archive, pieces[2]);
    let err = env.fail(&["cat", &archive, "long.bin"], 1);
    assert!(err.contains(&archive), "{err}");
    env.fail(
        &["restore", &archive, "--to", "two", "--include", "long.bin"],
        1,
    );
    assert!(!env.path().join("two").exists());
    env.fail(&["verify", "--deep", &archive], 1);
}

/// Without a usable index, `restore --include` reads the whole archive as before, says no
/// segment count, and warns of the damaged index.
#[test]
fn restore_include_without_a_usable_index_reads_the_whole_archive() {
    let env = Env::new();
    let archive = with_big_files(&env);
    let segment = segment_of(&env, &archive, "big/1.bin");
    flip_byte(&index_of(&env, &archive), 20);
    let args = [
        "--json",
        "restore",
        &archive,
        "--to",
        "part",
        "--include",
        "big/2.bin",
    ];
    let out = env.run_code(&args, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["segments_read"].is_null(), "{report}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{archive}.idx")), "{err}");
    assert!(err.contains("resbak reindex"), "{err}");
    let want = fs::read(env.results().join("s/big/2.bin")).unwrap();
    assert_eq!(fs::read(env.path().join("part/big/2.bin")).unwrap(), want);
    // The whole archive is read, so a damaged segment anywhere is found.
    damage_segment_behind_the_manifest(&env, &archive, segment);
    env.run_code(
        &[
            "restore",
            &archive,
            "--to",
            "none",
            "--include",
            "big/2.bin",
        ],
        1,
    );
    assert!(!env.path().join("none").exists());
}

/// Each file `restore --include` reads through the index is checked against the SHA-256 the
/// index records for it.
#[test]
fn restore_include_checks_each_file_against_its_index() {
    let env = Env::new();
    let archive = with_big_files(&env);
    let index = index_of(&env, &archive);
    let mut text = String::new();
    let file = fs::File::open(&index).unwrap();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text).unwrap();
    let want = sha256_file(&env.results().join("s/big/2.bin"));
    assert!(text.contains(&want));
    fs::write(
        &index,
        crate::util::gzip(text.replace(&want, &"0".repeat(64)).as_bytes()),
    )
    .unwrap();
    set_index_record(&env, &sha256_file(&index));
    let args = [
        "restore",
        &archive,
        "--to",
        "part",
        "--include",
        "big/2.bin",
    ];
    let err = env.fail(&args, 1);
    assert!(err.contains("big/2.bin differs from its index"), "{err}");
    assert!(!env.path().join("part").exists());
}

/// `diff` takes an indexed archive's tree from its index: a damaged segment is never inflated
/// (the archive file is still checked against the manifest). A damaged index is warned about,
/// and the whole archive read instead.
#[test]
fn diff_reads_no_segment_through_its_index_and_warns_of_a_damaged_one() {
    let env = Env::new();
    let archive = with_big_files(&env);
    let out = env.cmd(&["diff", "s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let segment = segment_of(&env, &archive, "big/1.bin");
    let index = fs::read(index_of(&env, &archive)).unwrap();
    flip_byte(&index_of(&env, &archive), 20);
    let out = env.cmd(&["diff", "s"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{archive}.idx")), "{err}");
    assert!(err.contains("resbak reindex"), "{err}");
    fs::write(index_of(&env, &archive), index).unwrap();
    damage_segment_behind_the_manifest(&env, &archive, segment);
    env.run_code(&["diff", "s"], 0);
    fs::remove_file(index_of(&env, &archive)).unwrap();
    env.run_code(&["diff", "s"], 2);
}

/// An archive `list` calls `missing` or `failed` is never browsed silently, even with its index
/// intact: `ls` and `cat` warn once naming the problem and exit 1. A missing archive is still
/// listed from its index; `cat` gives only bytes its index checks.
#[test]
fn ls_and_cat_of_a_missing_truncated_or_failed_archive_warn_and_exit_1() {
    let (env, archive) = backed_up();
    let path = env.backups().join(&archive);
    let listing = env.run(&["ls", "s"]);
    let file = "runs/fast10_slow50/trades.csv";
    let want = fs::read(env.results().join("s").join(file)).unwrap();
    let warned_once = |err: &str, what: &str| {
        let warning = |l: &&str| l.starts_with("resbak: warning:");
        let lines: Vec<&str> = err.lines().filter(warning).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains(&archive) && lines[0].contains(what),
            "{err}"
        );
    };
    // Truncated: the size differs from the manifest's.
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let out = env.run_code(&["ls", "s"], 1);
    assert_eq!(crate::util::stdout(&out), listing);
    warned_once(&String::from_utf8_lossy(&out.stderr), "manifest says");
    let out = env.cmd(&["cat", "s", file]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty() || out.stdout == want);
    warned_once(&String::from_utf8_lossy(&out.stderr), "manifest says");
    // A changed byte, once verify recorded it as failed.
    fs::write(&path, &bytes).unwrap();
    flip_byte(&path, bytes.len() as u64 / 2);
    env.run_code(&["verify", "s"], 1);
    let out = env.run_code(&["ls", "s"], 1);
    warned_once(&String::from_utf8_lossy(&out.stderr), "resbak verify");
    let out = env.cmd(&["cat", "s", file]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    warned_once(&String::from_utf8_lossy(&out.stderr), "resbak verify");
    // Deleted: listed from the index, with the warning.
    fs::remove_file(&path).unwrap();
    let out = env.run_code(&["ls", "s"], 1);
    assert_eq!(crate::util::stdout(&out), listing);
    warned_once(&String::from_utf8_lossy(&out.stderr), "is missing");
    // An index holds no bytes: `cat` says the archive is missing (a problem found, exit 1).
    let out = env.cmd(&["cat", "s", file]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("is missing") && !err.contains("cannot open"),
        "{err}"
    );
}

/// `ls` with a pattern that matches nothing exits 1 naming it (`--json` still prints an array),
/// as `restore --include` does. A pattern written as `tar -tzf` shows paths (`./runs`, `/runs`,
/// `s/runs`) matches nothing in either, and the error says which path was likely meant; none is
/// silently reinterpreted.
#[test]
fn ls_and_restore_name_a_pattern_that_matches_nothing_and_what_it_likely_meant() {
    let (env, archive) = backed_up();
    let err = env.fail(&["ls", "s", "no_such_file*"], 1);
    assert!(err.contains("\"no_such_file*\" matches nothing"), "{err}");
    assert!(!err.contains("did you mean"), "{err}");
    let out = env.run_code(&["--json", "ls", "s", "no_such_file*"], 1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, serde_json::json!([]));
    let meant = "paths are relative to the strategy folder: did you mean runs/fast10_slow50?";
    for pattern in [
        "./runs/fast10_slow50",
        "/runs/fast10_slow50",
        "s/runs/fast10_slow50",
    ] {
        let out = env.run_code(&["ls", "s", pattern], 1);
        assert!(out.stdout.is_empty(), "{pattern}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{pattern:?} matches nothing")),
            "{err}"
        );
        assert!(err.contains(meant), "{err}");
        let dest = env.path().join("out");
        let dest = dest.to_str().unwrap();
        let args = ["restore", &archive, "--to", dest, "--include", pattern];
        let err = env.fail(&args, 1);
        assert!(
            err.contains(&format!("--include {pattern:?} matches nothing")),
            "{err}"
        );
        assert!(err.contains(meant), "{err}");
    }
}
