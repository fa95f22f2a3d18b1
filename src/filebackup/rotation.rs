//! Which copies rotation removes. It counts distinct versions, not copies: the copies are kept,
//! newest first, until `keep` different contents have been seen; every older copy goes, except
//! the protected ones (the copy just made or restored, and the newest copy that passed the
//! content check).

use std::collections::HashSet;
use std::path::Path;

/// One copy as rotation sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate<'a> {
    /// Where it is.
    pub path: &'a Path,
    /// Its SHA-256; `None` when unknown (then it counts as a version of its own).
    pub version: Option<&'a str>,
}

/// The copies among `copies` (newest first) to remove to keep `keep` versions, never one in
/// `protect`.
pub(super) fn to_remove<'a>(
    copies: &[Candidate<'a>],
    keep: usize,
    protect: &[&Path],
) -> Vec<&'a Path> {
    let keep = keep.max(1);
    let mut seen = HashSet::new();
    let mut unknown = 0;
    let cutoff = copies.iter().position(|c| {
        let new = match c.version {
            Some(v) => !seen.contains(v),
            None => true,
        };
        if new && seen.len() + unknown == keep {
            return true;
        }
        match c.version {
            Some(v) => {
                seen.insert(v);
            }
            None => unknown += 1,
        }
        false
    });
    copies[cutoff.unwrap_or(copies.len())..]
        .iter()
        .map(|c| c.path)
        .filter(|p| !protect.contains(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn plan(versions: &[&str], keep: usize, protect: &[usize]) -> Vec<usize> {
        let paths: Vec<PathBuf> = (0..versions.len())
            .map(|i| PathBuf::from(i.to_string()))
            .collect();
        let copies: Vec<Candidate> = versions
            .iter()
            .zip(&paths)
            .map(|(v, p)| Candidate {
                path: p,
                version: (*v != "?").then_some(*v),
            })
            .collect();
        let protect: Vec<&Path> = protect.iter().map(|&i| paths[i].as_path()).collect();
        to_remove(&copies, keep, &protect)
            .iter()
            .map(|p| p.to_str().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn keeps_the_newest_copies_of_distinct_contents() {
        // Newest first: three copies of c, two of b, then a.
        assert_eq!(plan(&["c", "c", "c", "b", "b", "a"], 2, &[]), [5]);
        assert_eq!(plan(&["c", "b", "a"], 10, &[]), Vec::<usize>::new());
        assert_eq!(plan(&["d", "c", "b", "a"], 2, &[]), [2, 3]);
        assert_eq!(plan(&["?", "?", "a"], 2, &[]), [2]);
    }

    #[test]
    fn never_removes_a_protected_copy() {
        assert_eq!(plan(&["d", "c", "b", "a"], 2, &[3]), [2]);
        assert_eq!(plan(&["b", "a"], 0, &[]), [1]);
    }
}
