//! The index beside an archive, `NAME.tar.gz.idx`: where each segment of the archive lies and
//! what each entry is, so entries can be listed without decompressing, one file read by
//! inflating only its segments, and unchanged segments copied into the next backup.
//!
//! An archive's entries are grouped by [`starts_segment`], a rule that looks only at the
//! entries themselves (a group for each big file, about 1 MiB of small ones in each other);
//! each group is deflated on its own (see [`crate::pgzip`]) and cut again into pieces of
//! [`PIECE`] bytes counted from its start, each piece a segment, so that long groups inflate on
//! all cores. The index is text, one record per line, fields separated by tabs, paths escaped
//! (see [`escape`]), the whole gzip-compressed (`zcat` shows it):
//!
//! ```text
//! resbak-index  2  LEVEL|-  TOP
//! E  SEGMENT  KIND  MODE  MTIME  SIZE  SHA256|-  PATH  LINK-TARGET     (one per entry, in order)
//! S  UOFF  ULEN  ZOFF  ZLEN  CRC32  ZCRC32  KEY|+|-                    (one per segment)
//! end  ENTRIES  SEGMENTS
//! ```
//!
//! An entry's `SEGMENT` is the first segment of its group; the group goes on through the
//! segments whose key is `+` (see [`group`]). A group's key is the SHA-256 of its entries'
//! records ([`Record::line`]): equal keys (with the same top folder, level and format) mean
//! equal bytes. `LEVEL` is `-` for an index built from an archive resbak did not cut into
//! segments: one segment, never copied. Format 1 (resbak before pieces) is read as well: the
//! same, with each group one segment.

use crate::archive::EntryKind;
use crate::checksum::HashingReader;
use crate::error::{Error, Result};
use crate::pgzip::Segment;
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The segment and index format this resbak writes.
pub const FORMAT: u32 = 2;

/// The earliest format this resbak reads.
const OLDEST_FORMAT: u32 = 1;

/// Uncompressed bytes of a piece: a group is cut again this far from its start, and every
/// piece after. Small enough that a reader holds a few pieces in memory while later ones
/// inflate on other cores.
pub const PIECE: usize = 1 << 20;

/// The key of a segment that continues its group.
const CONTINUES: &str = "+";

/// Files from this size on get a segment of their own.
pub const BIG_FILE: u64 = 1 << 20;

/// Uncompressed bytes a segment of small entries holds on average: large enough that starting
/// each without a dictionary costs little compression, small enough that one changed file
/// leaves most of a folder of small files reusable.
const TARGET: u64 = 1 << 20;

const MAGIC: &str = "resbak-index";

/// The index file of the archive at `archive`.
pub fn path_for(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_os_string();
    name.push(".idx");
    PathBuf::from(name)
}

/// Whether the index beside the archive at `archive` has the SHA-256 `sha256`.
///
/// # Errors
/// When the index cannot be read (`NotFound` when there is none).
pub fn matches(archive: &Path, sha256: &str) -> std::io::Result<bool> {
    let file = std::fs::File::open(path_for(archive))?;
    Ok(crate::checksum::HashingReader::new(file).finish()?.sha256 == sha256)
}

/// The index file name of the archive named `backup_file`.
pub fn file_name(backup_file: &str) -> String {
    format!("{backup_file}.idx")
}

/// Whether the entry at `rel` (`size` bytes of content, 0 but for files) starts a new segment;
/// `after_big` says whether the entry before it was a file of [`BIG_FILE`] or more. A big file
/// gets a segment of its own; any other entry starts one with a chance proportional to its
/// size in the tar stream, decided by a hash of its path, so segments hold about 1 MiB and
/// where they start depends on the entries alone, never on offsets.
pub fn starts_segment(rel: &Path, size: u64, after_big: bool) -> bool {
    if after_big || size >= BIG_FILE {
        return true;
    }
    let weight = 512 + size;
    let hash = mix(u64::from(crc32fast::hash(rel.as_os_str().as_bytes()))) >> 32;
    hash * TARGET < weight << 32
}

/// The SplitMix64 finaliser: spreads the bits of `x` over all 64.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One entry as the index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// A folder, a file or a symbolic link (its [letter](EntryKind::letter) in the file).
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Content size (0 but for files).
    pub size: u64,
    /// SHA-256 of a file's content, lowercase hex; empty for others.
    pub sha256: String,
    /// Path below the top folder; empty for the top folder itself.
    pub path: PathBuf,
    /// A link's target; empty for others.
    pub target: Vec<u8>,
}

impl Record {
    /// The record as one line, without the segment number or line end.
    pub fn line(&self) -> String {
        let sha = if self.sha256.is_empty() {
            "-"
        } else {
            &self.sha256
        };
        format!(
            "{}\t{:o}\t{}\t{}\t{sha}\t{}\t{}",
            self.kind.letter(),
            self.mode,
            self.mtime,
            self.size,
            escape(self.path.as_os_str().as_bytes()),
            escape(&self.target)
        )
    }

    fn parse(fields: &[&str]) -> Option<Record> {
        let [kind, mode, mtime, size, sha, path, target] = fields else {
            return None;
        };
        let kind = kind.chars().next().and_then(EntryKind::of_letter)?;
        Some(Record {
            kind,
            mode: u32::from_str_radix(mode, 8).ok()?,
            mtime: mtime.parse().ok()?,
            size: size.parse().ok()?,
            sha256: if *sha == "-" {
                String::new()
            } else {
                sha.to_string()
            },
            path: PathBuf::from(std::ffi::OsString::from_vec(unescape(path)?)),
            target: unescape(target)?,
        })
    }
}

/// The key of a segment holding `records`.
pub fn key_of<'a>(records: impl IntoIterator<Item = &'a Record>) -> String {
    let mut key = Sha256::new();
    for record in records {
        key.update(record.line().as_bytes());
        key.update(b"\n");
    }
    crate::checksum::hex(&key.finalize())
}

/// Escapes `bytes` for a tab-separated line: printable ASCII stays, `\` doubles, every other
/// byte becomes `\xHH`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Undoes [`escape`]; `None` for text it cannot have written.
fn unescape(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\\', Some(b'\\')) => (out.push(b'\\'), i += 2).1,
            (b'\\', Some(b'x')) => {
                let hex = text.get(i + 2..i + 4)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            (b'\\', _) => return None,
            (b, _) => (out.push(b), i += 1).1,
        }
    }
    Some(out)
}

/// Writes an index as its archive is written: entries as they come, segments at the end,
/// gzip-compressed.
pub struct Writer<W: Write> {
    out: flate2::write::GzEncoder<W>,
    /// For an archive not cut into segments: one segment, never copied.
    whole: bool,
    keys: Vec<String>,
    key: Sha256,
    in_segment: usize,
    entries: u64,
}

impl<W: Write> Writer<W> {
    /// Starts the index of an archive with top folder `top` written at `level`.
    pub fn new(out: W, level: u32, top: &str) -> io::Result<Self> {
        Self::start(out, Some(level), top)
    }

    fn start(out: W, level: Option<u32>, top: &str) -> io::Result<Self> {
        let mut out = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
        let level = level.map_or("-".to_string(), |l| l.to_string());
        let top = escape(top.as_bytes());
        writeln!(out, "{MAGIC}\t{FORMAT}\t{level}\t{top}")?;
        Ok(Writer {
            out,
            whole: level == "-",
            keys: Vec::new(),
            key: Sha256::new(),
            in_segment: 0,
            entries: 0,
        })
    }

    /// Starts the index of an archive with top folder `top` that was not cut into segments
    /// (any archive): its entries all lie in one segment, the whole file.
    pub fn whole(out: W, top: &str) -> io::Result<Self> {
        Self::start(out, None, top)
    }

    /// Records one entry of the current segment.
    pub fn entry(&mut self, record: &Record) -> io::Result<()> {
        let line = record.line();
        self.key.update(line.as_bytes());
        self.key.update(b"\n");
        self.in_segment += 1;
        self.entries += 1;
        let segment = if self.whole { 0 } else { self.keys.len() };
        writeln!(self.out, "E\t{segment}\t{line}")
    }

    /// Ends the current group, if it holds any entry: it was written as `pieces` segments.
    pub fn end_segment(&mut self, pieces: u64) {
        if self.in_segment > 0 {
            let key = std::mem::take(&mut self.key).finalize();
            self.keys.push(crate::checksum::hex(&key));
            for _ in 1..pieces {
                self.keys.push(CONTINUES.to_string());
            }
            self.in_segment = 0;
        }
    }

    /// Writes the segment table: `segments` as the archive writer found them, one per segment
    /// ended, plus the archive's end. Returns the writer.
    pub fn finish(mut self, segments: &[Segment]) -> io::Result<W> {
        self.end_segment(1);
        if self.whole {
            self.keys.clear();
        }
        let expected = if self.whole { 1 } else { self.keys.len() + 1 };
        if segments.len() != expected {
            return Err(io::Error::other(format!(
                "{} segments written for {expected} recorded",
                segments.len(),
            )));
        }
        let keys = self.keys.iter().map(String::as_str).chain(["-"; 1]);
        for (s, key) in segments.iter().zip(keys) {
            let (crc, zcrc) = (s.crc, s.zcrc);
            writeln!(
                self.out,
                "S\t{}\t{}\t{}\t{}\t{crc:08x}\t{zcrc:08x}\t{key}",
                s.uoff, s.ulen, s.zoff, s.zlen
            )?;
        }
        writeln!(self.out, "end\t{}\t{}", self.entries, segments.len())?;
        let mut out = self.out.finish()?;
        out.flush()?;
        Ok(out)
    }
}

/// A segment as an index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    /// Where it lies.
    pub segment: Segment,
    /// The key of its group's entries, on a group's first segment; `None` for one that must
    /// never be copied and for the pieces that continue a group.
    pub key: Option<String>,
    /// Whether it continues the group of the segment before it.
    pub continues: bool,
}

/// The segments of the group whose first segment is `head`: it and the pieces that continue
/// it. Empty (at the end) when `head` is past the end.
pub fn group(segments: &[Indexed], head: usize) -> std::ops::Range<usize> {
    let Some(after) = segments.get(head + 1..) else {
        return segments.len()..segments.len();
    };
    let len = after.iter().take_while(|s| s.continues).count();
    head..head + 1 + len
}

/// An index as read: its header and segment table.
#[derive(Debug, Clone)]
pub struct Index {
    /// Its format: [`FORMAT`], or an earlier one this resbak still reads.
    pub format: u32,
    /// The level its archive was written at; `None` when it was not cut into segments.
    pub level: Option<u32>,
    /// The archive's top folder.
    pub top: String,
    /// The segments, in order.
    pub segments: Vec<Indexed>,
}

/// Reads the index at `path`, giving each entry and its segment number to `each` in order. With
/// `sha256`, the file must have that SHA-256; that is checked at the end, so a caller that
/// must not act on a damaged index checks first with [`check_file`].
///
/// # Errors
/// [`Error::Io`] if it cannot be read, [`Error::Corrupt`] if it is not an index this resbak
/// writes or its SHA-256 differs.
pub fn read(
    path: &Path,
    sha256: Option<&str>,
    mut each: impl FnMut(usize, Record) -> Result<()>,
) -> Result<Index> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut hashing = HashingReader::new(file);
    let bad = |what: String| Error::corrupt(path, io::Error::other(what));
    let gz = flate2::read::MultiGzDecoder::new(&mut hashing);
    let mut lines = BufReader::with_capacity(1 << 16, gz).split(b'\n');
    let mut next = || -> Result<Option<String>> {
        match lines.next() {
            None => Ok(None),
            Some(line) => {
                let line = line.map_err(|e| Error::io("read", path, e))?;
                String::from_utf8(line)
                    .map(Some)
                    .map_err(|_| bad("a line is not text".into()))
            }
        }
    };
    let head = next()?.unwrap_or_default();
    let fields: Vec<&str> = head.split('\t').collect();
    let format = match fields[..] {
        [MAGIC, f, _, _] => f
            .parse()
            .ok()
            .filter(|f| (OLDEST_FORMAT..=FORMAT).contains(f)),
        _ => None,
    };
    let index = match (&fields[..], format) {
        (&[_, _, level, top], Some(format)) => Index {
            format,
            level: level.parse().ok(),
            top: String::from_utf8_lossy(&unescape(top).unwrap_or_default()).into_owned(),
            segments: Vec::new(),
        },
        _ => return Err(bad("not a resbak index of this format".into())),
    };
    let mut index = index;
    let (mut entries, mut ended) = (0u64, false);
    while let Some(line) = next()? {
        let fields: Vec<&str> = line.split('\t').collect();
        let malformed = || bad(format!("malformed line {line:?}"));
        match fields[..] {
            ["E", seg, ..] if !ended => {
                let seg = seg.parse().map_err(|_| malformed())?;
                let record = Record::parse(&fields[2..]).ok_or_else(malformed)?;
                entries += 1;
                each(seg, record)?;
            }
            ["S", ..] if !ended => {
                let segment = parse_segment(&fields[1..]).ok_or_else(malformed)?;
                index.segments.push(segment);
            }
            ["end", n, s] if !ended => {
                ended = n.parse() == Ok(entries) && s.parse() == Ok(index.segments.len());
                if !ended {
                    return Err(malformed());
                }
            }
            _ => return Err(malformed()),
        }
    }
    if !ended {
        return Err(bad("the index ends early".into()));
    }
    drop(lines);
    let found = hashing.finish().map_err(|e| Error::io("read", path, e))?;
    match sha256 {
        Some(want) if found.sha256 != want => Err(bad(format!(
            "SHA-256 mismatch: manifest {want}, file {}",
            found.sha256
        ))),
        _ => Ok(index),
    }
}

/// Writes an index of the archive at `archive` (top folder `top`) into `out`, reading it all:
/// one segment, the whole file, as for any archive resbak did not cut into segments.
///
/// # Errors
/// [`Error::Corrupt`] if the archive cannot be read as a tar.gz under `top`; [`Error::Io`] if
/// it cannot be opened or `out` cannot be written.
pub fn build<W: Write>(archive: &Path, top: &str, out: W) -> Result<W> {
    let file = crate::archive::open_file(archive)?;
    let size = file
        .metadata()
        .map_err(|e| Error::io("read", archive, e))?
        .len();
    let corrupt = |e: io::Error| Error::corrupt(archive, e);
    let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 17, file));
    let mut writer = Writer::whole(out, top).map_err(corrupt)?;
    each_record(gz, archive, top, true, |record| {
        writer.entry(&record).map_err(corrupt)
    })?;
    // Its uncompressed length is not recorded (0): nothing reads it for such a segment.
    let whole = Segment {
        zlen: size,
        ..Segment::default()
    };
    writer.finish(&[whole]).map_err(corrupt)
}

/// Gives the record of every entry of the tar stream `tar_stream` (of the archive `archive`,
/// top folder `top`) to `each`; files' SHA-256 only `with_content` (else left empty).
///
/// # Errors
/// [`Error::Corrupt`] if the stream cannot be read as a tar under `top`.
pub fn each_record(
    tar_stream: impl io::Read,
    archive: &Path,
    top: &str,
    with_content: bool,
    mut each: impl FnMut(Record) -> Result<()>,
) -> Result<()> {
    let corrupt = |e: io::Error| Error::corrupt(archive, e);
    let mut tar = crate::targuard::reader(tar_stream);
    for entry in tar.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        if let Some(record) = record_of(entry, top, with_content).map_err(corrupt)? {
            each(record)?;
        }
    }
    Ok(())
}

/// The record of one tar entry below `top`, reading a file's content `with_content`; `None`
/// for entries of other kinds, which resbak never writes.
fn record_of<R: io::Read>(
    mut entry: tar::Entry<R>,
    top: &str,
    with_content: bool,
) -> io::Result<Option<Record>> {
    let path = entry.path()?.into_owned();
    let Ok(below) = path.strip_prefix(top) else {
        return Err(io::Error::other(format!(
            "{} is outside {top}",
            path.display()
        )));
    };
    let header = entry.header();
    let kind = EntryKind::of_header(header.entry_type());
    if !kind.archived() {
        return Ok(None);
    }
    let mut record = Record {
        kind,
        mode: header.mode()? & 0o7777 & !0o6000,
        mtime: header.mtime()?,
        size: match kind {
            EntryKind::File => header.size()?,
            _ => 0,
        },
        sha256: String::new(),
        path: below.to_path_buf(),
        target: Vec::new(),
    };
    if kind == EntryKind::Symlink {
        let target = entry.link_name_bytes().unwrap_or_default();
        record.target = target.into_owned();
    }
    if kind == EntryKind::File && with_content {
        record.sha256 = HashingReader::new(&mut entry).finish()?.sha256;
    }
    Ok(Some(record))
}

/// The segments of the archive at `archive` from its index, if `sha256` (the manifest's) is
/// given, the index has it and the archive was cut into segments; else `None`.
pub fn segments_of(archive: &Path, sha256: Option<&str>) -> Option<Vec<Segment>> {
    let index = read(&path_for(archive), Some(sha256?), |_, _| Ok(())).ok()?;
    index.level?;
    Some(index.segments.into_iter().map(|s| s.segment).collect())
}

/// Why the index of the archive at `archive` cannot serve when the manifest records
/// `sha256` for it: `the index NAME is missing`, `is damaged (...)` (a SHA-256 that differs,
/// text that does not parse) or `cannot be read (...)`; `None` when it is intact.
pub fn unusable(archive: &Path, sha256: &str) -> Option<String> {
    let path = path_for(archive);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    match check_file(&path, sha256) {
        Ok(()) => None,
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Some(format!("the index {name} is missing"))
        }
        Err(Error::Corrupt { detail, .. }) => {
            Some(format!("the index {name} is damaged ({detail})"))
        }
        Err(e) => Some(format!(
            "the index {name} cannot be read ({})",
            crate::error::chain(&e)
        )),
    }
}

/// Checks that the file at `path` has SHA-256 `sha256`.
///
/// # Errors
/// As [`read`].
pub fn check_file(path: &Path, sha256: &str) -> Result<()> {
    read(path, Some(sha256), |_, _| Ok(())).map(drop)
}

fn parse_segment(fields: &[&str]) -> Option<Indexed> {
    let [uoff, ulen, zoff, zlen, crc, zcrc, key] = fields else {
        return None;
    };
    let segment = Segment {
        uoff: uoff.parse().ok()?,
        ulen: ulen.parse().ok()?,
        zoff: zoff.parse().ok()?,
        zlen: zlen.parse().ok()?,
        crc: u32::from_str_radix(crc, 16).ok()?,
        zcrc: u32::from_str_radix(zcrc, 16).ok()?,
        copied: false,
    };
    let continues = *key == CONTINUES;
    let key = (*key != "-" && !continues).then(|| key.to_string());
    Some(Indexed {
        segment,
        key,
        continues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_of_small_files_hold_about_the_target_and_big_files_stand_alone() {
        let size = 4000;
        let cuts = (0..100_000)
            .filter(|i| starts_segment(Path::new(&format!("runs/{i}/daily.csv")), size, false))
            .count();
        let average = 100_000 * (512 + size) / cuts as u64;
        assert!(
            (TARGET * 3 / 4..TARGET * 4 / 3).contains(&average),
            "{average}"
        );
        assert!(starts_segment(Path::new("big.csv"), BIG_FILE, false));
        assert!(starts_segment(Path::new("a"), 0, true));
    }

    #[test]
    fn escaping_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let text = escape(&all);
        assert!(!text.contains(['\t', '\n', '\r']));
        assert_eq!(unescape(&text).unwrap(), all);
        assert_eq!(unescape("a\\q"), None);
    }

    #[test]
    fn an_index_round_trips_and_a_changed_byte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz.idx");
        let record = Record {
            kind: EntryKind::File,
            mode: 0o644,
            mtime: 7,
            size: 3,
            sha256: "ab".repeat(32),
            path: PathBuf::from("runs/a\tb.csv"),
            target: Vec::new(),
        };
        let mut w = Writer::new(Vec::new(), 6, "s").unwrap();
        w.entry(&record).unwrap();
        let segs = [
            Segment::default(),
            Segment {
                zoff: 9,
                ..Segment::default()
            },
        ];
        let bytes = w.finish(&segs).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let sha = crate::checksum::hex(&Sha256::digest(&bytes));
        let mut seen = Vec::new();
        let index = read(&path, Some(&sha), |s, r| {
            seen.push((s, r));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(0, record.clone())]);
        assert_eq!((index.level, index.top.as_str()), (Some(6), "s"));
        assert_eq!(index.segments[0].key, Some(key_of([&record])));
        assert_eq!(index.segments[1].key, None);
        let mut damaged = bytes.clone();
        damaged[30] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        assert!(check_file(&path, &sha).is_err());
    }

    #[test]
    fn a_group_written_as_pieces_reads_back_as_one_group_and_format_1_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz.idx");
        let file = |name: &str| Record {
            kind: EntryKind::File,
            mode: 0o644,
            mtime: 7,
            size: 3,
            sha256: "ab".repeat(32),
            path: PathBuf::from(name),
            target: Vec::new(),
        };
        let mut w = Writer::new(Vec::new(), 6, "s").unwrap();
        w.entry(&file("big.bin")).unwrap();
        w.end_segment(3);
        w.entry(&file("small.csv")).unwrap();
        w.end_segment(1);
        let bytes = w.finish(&[Segment::default(); 5]).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let mut heads = Vec::new();
        let index = read(&path, None, |s, r| {
            heads.push((s, r.path));
            Ok(())
        })
        .unwrap();
        assert_eq!(index.format, FORMAT);
        assert_eq!(heads, [(0, "big.bin".into()), (3, "small.csv".into())]);
        let continues: Vec<bool> = index.segments.iter().map(|s| s.continues).collect();
        assert_eq!(continues, [false, true, true, false, false]);
        assert_eq!(index.segments[0].key, Some(key_of([&file("big.bin")])));
        assert_eq!(index.segments[1].key, None);
        assert_eq!(group(&index.segments, 0), 0..3);
        assert_eq!(group(&index.segments, 3), 3..4);
        assert_eq!(group(&index.segments, 4), 4..5);
        assert_eq!(group(&index.segments, 5), 5..5);
        assert_eq!(group(&index.segments, 9), 5..5);

        let mut text = String::new();
        io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
        let old = text.replacen("resbak-index\t2\t", "resbak-index\t1\t", 1);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(old.as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert_eq!(read(&path, None, |_, _| Ok(())).unwrap().format, 1);
        let future = text.replacen("resbak-index\t2\t", "resbak-index\t3\t", 1);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(future.as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert!(read(&path, None, |_, _| Ok(())).is_err());
    }
}
