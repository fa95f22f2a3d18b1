//! The sidecar object beside each archive on a remote: `<name>.tar.gz.entry.yaml`, the
//! archive's manifest entry and, for an encrypted copy, the size and SHA-256 of the
//! `<name>.tar.gz.age` object that holds it; when the archive's index travels with it, the
//! size and SHA-256 of the index object (`<name>.tar.gz.idx`, or `.idx.age` encrypted).
//! Sidecars written before indexes travelled have no `index:` block and still load.
//!
//! Everything read from a remote is untrusted: a sidecar is used only after it parsed, names
//! its own archive, and its names, sizes and digests are well formed, so nothing a bucket holds
//! can reach a local manifest, a message or a path unchecked.

use super::crypto::SEALED_SUFFIX;
use crate::manifest::{Entry, is_digest};
use serde::{Deserialize, Serialize};

/// Suffix of the object that holds an archive's manifest entry, beside the archive.
pub const ENTRY_SUFFIX: &str = ".entry.yaml";
/// The largest entry object read: a few hundred bytes, or more with the headline metrics of a
/// large sweep; anything larger is not one (and a hostile bucket cannot fill memory).
pub(super) const MAX_BYTES: u64 = 1 << 20;
/// The key under which a sidecar records the encrypted object.
const SEALED_KEY: &str = "sealed";
/// The key under which a sidecar records the index object.
const INDEX_KEY: &str = "index";

/// The encrypted object that holds an archive: its size and SHA-256 (of the ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Always `age`: the format of the object.
    pub format: String,
    /// Size of the object in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the object.
    pub sha256: String,
}

/// The object that holds an archive's index, as stored (encrypted like its archive): its size
/// and SHA-256. The SHA-256 of the index itself is the entry's `index_sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexObject {
    /// Size of the object in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the object.
    pub sha256: String,
}

/// What a remote records about one archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    /// The archive's manifest entry (size and SHA-256 of the plaintext archive).
    pub entry: Entry,
    /// The encrypted object, when the copy is encrypted.
    pub sealed: Option<Sealed>,
    /// The index object, when the archive's index was pushed with it.
    pub index: Option<IndexObject>,
}

impl Sidecar {
    /// The name of the object that holds the archive: `<name>.tar.gz` or `<name>.tar.gz.age`.
    pub fn object(&self) -> String {
        object_name(&self.entry.backup_file, self.sealed.is_some())
    }

    /// The name of the object that holds the archive's index, when one was pushed:
    /// `<name>.tar.gz.idx` or `<name>.tar.gz.idx.age`.
    pub fn index_object(&self) -> Option<String> {
        let name = crate::index::file_name(&self.entry.backup_file);
        self.index
            .as_ref()
            .map(|_| object_name(&name, self.sealed.is_some()))
    }

    /// Size and SHA-256 the object must have.
    pub fn object_digest(&self) -> (u64, &str) {
        match &self.sealed {
            Some(s) => (s.size, &s.sha256),
            None => (self.entry.size, &self.entry.sha256),
        }
    }

    /// The sidecar's text.
    ///
    /// # Errors
    /// A description when the entry cannot be written as YAML.
    pub fn render(&self) -> Result<String, String> {
        let mut value = serde_yaml::to_value(&self.entry).map_err(|e| e.to_string())?;
        if let serde_yaml::Value::Mapping(map) = &mut value {
            if let Some(sealed) = &self.sealed {
                let sealed = serde_yaml::to_value(sealed).map_err(|e| e.to_string())?;
                map.insert(SEALED_KEY.into(), sealed);
            }
            if let Some(index) = &self.index {
                let index = serde_yaml::to_value(index).map_err(|e| e.to_string())?;
                map.insert(INDEX_KEY.into(), index);
            }
        }
        let yaml = serde_yaml::to_string(&value).map_err(|e| e.to_string())?;
        Ok(format!("# resbak catalogue entry\n{yaml}"))
    }

    /// The sidecar as it can be stored, within the 1 MiB an entry object may take: without the
    /// headline metrics when they would make it larger (they stay in the local manifest;
    /// `metrics --refresh` reads them back from a pulled archive).
    pub fn within_limit(mut self) -> Sidecar {
        let fits = |s: &Sidecar| s.render().is_ok_and(|t| t.len() as u64 <= MAX_BYTES);
        if !fits(&self) {
            self.entry.metrics = None;
            self.entry.metrics_sha256 = None;
        }
        self
    }

    /// Parses a sidecar and checks that it describes archive `name` with plain names and
    /// well-formed sizes and digests.
    ///
    /// # Errors
    /// What is wrong, as one line (control characters escaped).
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Sidecar, String> {
        let mut value: serde_yaml::Value =
            serde_yaml::from_slice(bytes).map_err(|e| format!("not a resbak entry: {e}"))?;
        let (sealed, index) = match &mut value {
            serde_yaml::Value::Mapping(map) => (map.remove(SEALED_KEY), map.remove(INDEX_KEY)),
            _ => return Err("not a resbak entry: not a mapping".into()),
        };
        let entry: Entry =
            serde_yaml::from_value(value).map_err(|e| format!("not a resbak entry: {e}"))?;
        let sealed: Option<Sealed> = sealed
            .map(serde_yaml::from_value)
            .transpose()
            .map_err(|e| format!("not a resbak entry: sealed: {e}"))?;
        let index: Option<IndexObject> = index
            .map(serde_yaml::from_value)
            .transpose()
            .map_err(|e| format!("not a resbak entry: index: {e}"))?;
        let sidecar = Sidecar {
            entry,
            sealed,
            index,
        };
        sidecar.check(name)?;
        Ok(sidecar)
    }

    /// The checks of [`Sidecar::parse`].
    fn check(&self, name: &str) -> Result<(), String> {
        let entry = &self.entry;
        if entry.backup_file != name {
            return Err(format!(
                "it describes {:?}, not {name:?}",
                entry.backup_file
            ));
        }
        if !entry.is_sound() {
            return Err(format!(
                "invalid archive or strategy name {:?} / {:?}",
                entry.backup_file, entry.strategy
            ));
        }
        if entry.timestamp.len() > 32 || entry.timestamp.contains(char::is_control) {
            return Err(format!("invalid time {:?}", entry.timestamp));
        }
        if !is_digest(&entry.sha256) {
            return Err(format!("invalid SHA-256 {:?}", entry.sha256));
        }
        for digest in [&entry.meta_digest, &entry.content_digest]
            .into_iter()
            .flatten()
        {
            if digest.contains(char::is_control) || digest.len() > 128 {
                return Err(format!("invalid digest {digest:?}"));
            }
        }
        if let Some(sha) = &entry.index_sha256
            && !is_digest(sha)
        {
            return Err(format!("invalid index SHA-256 {sha:?}"));
        }
        self.check_index()?;
        if let Some(sealed) = &self.sealed {
            if sealed.format != "age" {
                return Err(format!("unknown encryption format {:?}", sealed.format));
            }
            if !is_digest(&sealed.sha256) {
                return Err(format!("invalid SHA-256 {:?}", sealed.sha256));
            }
            if sealed.size <= entry.size {
                return Err(format!(
                    "its encrypted size {} is not larger than its archive's {}",
                    sealed.size, entry.size
                ));
            }
        }
        Ok(())
    }
}

impl Sidecar {
    /// The checks on the `index:` block: a well-formed digest, an entry that records the
    /// index's own SHA-256 and, for a plaintext copy, the same digest for both.
    fn check_index(&self) -> Result<(), String> {
        let Some(index) = &self.index else {
            return Ok(());
        };
        if !is_digest(&index.sha256) || index.size == 0 {
            return Err(format!(
                "invalid index object: {} bytes, SHA-256 {:?}",
                index.size, index.sha256
            ));
        }
        match (&self.entry.index_sha256, &self.sealed) {
            (None, _) => Err("an index object but no index_sha256".into()),
            (Some(sha), None) if *sha != index.sha256 => Err(format!(
                "its index object's SHA-256 {} is not its index_sha256 {sha}",
                index.sha256
            )),
            _ => Ok(()),
        }
    }
}

/// `<archive>` or `<archive>.age`.
pub fn object_name(archive: &str, sealed: bool) -> String {
    if sealed {
        format!("{archive}{SEALED_SUFFIX}")
    } else {
        archive.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "s_19700101_000001.tar.gz";

    fn sidecar(name: &str, strategy: &str) -> Sidecar {
        let mut entry = Entry::sample(strategy, name, 1);
        entry.sha256 = "ab".repeat(32);
        Sidecar {
            entry,
            sealed: None,
            index: None,
        }
    }

    #[test]
    fn sidecars_must_describe_their_own_plain_archive_name() {
        let good = sidecar(NAME, "s");
        assert_eq!(NAME, good.entry.backup_file, "the sample's name");
        let text = good.render().unwrap();
        assert_eq!(Sidecar::parse(NAME, text.as_bytes()), Ok(good.clone()));
        assert!(Sidecar::parse("other.tar.gz", text.as_bytes()).is_err());
        for (name, strategy) in [
            ("../x.tar.gz", "s"),
            ("a/b.tar.gz", "s"),
            ("x.tar.gz", ".."),
            ("s\u{1b}[2J_19700101_000001.tar.gz", "s\u{1b}[2J"),
        ] {
            let text = sidecar(name, strategy).render().unwrap();
            assert!(
                Sidecar::parse(name, text.as_bytes()).is_err(),
                "{name} {strategy}"
            );
        }
        assert!(Sidecar::parse(NAME, b"not: [yaml").is_err());
    }

    #[test]
    fn sizes_and_digests_must_be_well_formed() {
        let mut bad = sidecar(NAME, "s");
        bad.entry.sha256 = "ZZ".into();
        let text = bad.render().unwrap();
        assert!(Sidecar::parse(NAME, text.as_bytes()).is_err());

        let mut sealed = sidecar(NAME, "s");
        sealed.sealed = Some(Sealed {
            format: "age".into(),
            size: sealed.entry.size + 200,
            sha256: "cd".repeat(32),
        });
        let text = sealed.render().unwrap();
        let back = Sidecar::parse(NAME, text.as_bytes()).unwrap();
        assert_eq!(back.object(), format!("{NAME}.age"));
        assert_eq!(back, sealed);
        let mut small = sealed.clone();
        small.sealed.as_mut().unwrap().size = 1;
        assert!(Sidecar::parse(NAME, small.render().unwrap().as_bytes()).is_err());
    }

    #[test]
    fn an_entry_too_large_for_its_object_leaves_its_metrics_out() {
        let mut big = sidecar(NAME, "s");
        let many = (0..40_000).map(|i| (format!("runs/run_{i:05}:sharpe"), 1.5));
        big.entry.metrics = Some(many.collect());
        assert!(big.render().unwrap().len() as u64 > MAX_BYTES);
        let text = big.within_limit().render().unwrap();
        assert!(text.len() as u64 <= MAX_BYTES && !text.contains("sharpe"));
        let back = Sidecar::parse(NAME, text.as_bytes()).unwrap();
        assert_eq!(back.entry.metrics, None);
        let mut some = sidecar(NAME, "s");
        some.entry.metrics = Some([("sharpe".to_string(), 1.5)].into());
        assert_eq!(some.clone().within_limit(), some);
    }

    #[test]
    fn an_index_block_is_checked_and_old_sidecars_without_one_load() {
        let mut old = sidecar(NAME, "s");
        old.entry.index_sha256 = Some("ef".repeat(32));
        let text = old.render().unwrap();
        assert!(!text.contains("\nindex:"), "{text}");
        assert_eq!(Sidecar::parse(NAME, text.as_bytes()), Ok(old.clone()));
        assert_eq!(old.index_object(), None);

        let mut plain = old.clone();
        plain.index = Some(IndexObject {
            size: 10,
            sha256: "ef".repeat(32),
        });
        let back = Sidecar::parse(NAME, plain.render().unwrap().as_bytes()).unwrap();
        assert_eq!(back, plain);
        assert_eq!(back.index_object(), Some(format!("{NAME}.idx")));

        let mut sealed = plain.clone();
        sealed.sealed = Some(Sealed {
            format: "age".into(),
            size: sealed.entry.size + 200,
            sha256: "cd".repeat(32),
        });
        sealed.index.as_mut().unwrap().sha256 = "01".repeat(32);
        let back = Sidecar::parse(NAME, sealed.render().unwrap().as_bytes()).unwrap();
        assert_eq!(back.index_object(), Some(format!("{NAME}.idx.age")));

        let mut other = plain.clone();
        other.index.as_mut().unwrap().sha256 = "01".repeat(32);
        let mut unrecorded = plain.clone();
        unrecorded.entry.index_sha256 = None;
        let mut malformed = plain.clone();
        malformed.index.as_mut().unwrap().sha256 = "../x".into();
        let mut bad_entry = old.clone();
        bad_entry.entry.index_sha256 = Some("x\u{1b}".into());
        for bad in [other, unrecorded, malformed, bad_entry] {
            let text = bad.render().unwrap();
            assert!(Sidecar::parse(NAME, text.as_bytes()).is_err(), "{text}");
        }
        let unknown = format!("{}  extra: 1\n", plain.render().unwrap());
        assert!(
            Sidecar::parse(NAME, unknown.as_bytes()).is_err(),
            "{unknown}"
        );
    }
}
