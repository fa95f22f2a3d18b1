//! Which of a selection's patterns (`restore --include`, `ls GLOB`) cover something, as entries
//! are seen one by one, and for those that cover nothing, the pattern the user likely meant.

use crate::archive::Excludes;
use crate::error::{Meant, Result};
use std::path::Path;

/// A pattern that covered no entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// The pattern, as given.
    pub pattern: String,
    /// The same pattern without a leading `./`, `/` or top folder name (paths are relative to
    /// the strategy folder), or with its glob characters escaped (a name that holds them), when
    /// that would have covered something.
    pub meant: Option<Meant>,
}

/// Tracks which patterns of an include filter cover something.
pub struct Matching<'a> {
    include: &'a Excludes,
    singles: Vec<Excludes>,
    matched: Vec<bool>,
    /// Per pattern, the pattern it likely meant (see [`Unmatched::meant`]), if it differs,
    /// with whether that covered something.
    stripped: Vec<Vec<(Meant, Excludes, bool)>>,
}

impl<'a> Matching<'a> {
    /// Starts with no pattern matched, for an archive whose top folder is `top`.
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidGlob`] when a pattern does not compile.
    pub fn new(include: &'a Excludes, top: &str) -> Result<Self> {
        let single = |p: &str| Excludes::new(&[p.to_string()]);
        let singles = include
            .patterns()
            .iter()
            .map(|p| single(p))
            .collect::<Result<Vec<_>>>()?;
        let stripped = include
            .patterns()
            .iter()
            .map(|p| {
                (likely_meant(p, top).into_iter())
                    .filter_map(|meant| Some((single(&meant.pattern).ok()?, meant)))
                    .map(|(alt, meant)| (meant, alt, false))
                    .collect()
            })
            .collect();
        Ok(Matching {
            include,
            matched: vec![false; singles.len()],
            singles,
            stripped,
        })
    }

    /// Whether the entry at `below` (the top folder is the empty path) is selected; notes the
    /// patterns that cover it.
    pub fn includes(&mut self, below: &Path) -> bool {
        let top_folder = below.as_os_str().is_empty();
        if !top_folder {
            for (hit, single) in self.matched.iter_mut().zip(&self.singles) {
                *hit |= single.covers(below);
            }
            for (_, alt, hit) in self.stripped.iter_mut().flatten() {
                *hit |= alt.covers(below);
            }
        }
        top_folder || self.include.covers(below)
    }

    /// The patterns that covered nothing.
    pub fn unmatched(self) -> Vec<Unmatched> {
        self.include
            .patterns()
            .iter()
            .zip(self.matched)
            .zip(self.stripped)
            .filter(|((_, hit), _)| !hit)
            .map(|((p, _), alt)| Unmatched {
                pattern: p.clone(),
                meant: (alt.into_iter())
                    .find(|(_, _, hit)| *hit)
                    .map(|(m, _, _)| m),
            })
            .collect()
    }
}

/// What `pattern` likely meant, first to last: made relative (see [`relative`]), then also
/// with its glob characters escaped (a name that holds them).
fn likely_meant(pattern: &str, top: &str) -> Vec<Meant> {
    let base = relative(pattern, top);
    let escaped = globset::escape(base.unwrap_or(pattern));
    let relative = base.map(|b| Meant {
        pattern: b.to_string(),
        literal: false,
    });
    let literal = (escaped != base.unwrap_or(pattern)).then_some(Meant {
        pattern: escaped,
        literal: true,
    });
    relative.into_iter().chain(literal).collect()
}

/// `pattern` without its leading `./`, `/` and `top/` (as `tar -tzf` shows paths), when it has
/// any and something is left.
fn relative<'p>(pattern: &'p str, top: &str) -> Option<&'p str> {
    let mut rest = pattern;
    loop {
        let next = rest
            .strip_prefix("./")
            .or_else(|| rest.strip_prefix('/'))
            .or_else(|| rest.strip_prefix(top).and_then(|r| r.strip_prefix('/')));
        match next {
            Some(r) => rest = r,
            None => break,
        }
    }
    (rest != pattern && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_strips_what_tar_shows_before_a_path() {
        for (pattern, want) in [
            ("./runs/x", Some("runs/x")),
            ("/runs/x", Some("runs/x")),
            ("s/runs/x", Some("runs/x")),
            ("./s/runs/x", Some("runs/x")),
            ("runs/x", None),
            ("s/", None),
            ("sx/runs", None),
        ] {
            assert_eq!(relative(pattern, "s"), want, "{pattern}");
        }
    }

    #[test]
    fn an_unmatched_pattern_says_what_it_likely_meant() {
        let patterns = ["./runs/x", "s/nope", "runs", "./runs/*.csv", "q[1].csv"];
        let include = Excludes::new(&patterns.map(String::from)).unwrap();
        let mut matching = Matching::new(&include, "s").unwrap();
        for path in ["runs", "runs/x", "runs/x/a.csv", "runs/b.csv", "q[1].csv"] {
            matching.includes(Path::new(path));
        }
        let unmatched = matching.unmatched();
        let meant = |pattern: &str, literal| {
            Some(Meant {
                pattern: pattern.into(),
                literal,
            })
        };
        let want = [
            Unmatched {
                pattern: "./runs/x".into(),
                meant: meant("runs/x", false),
            },
            Unmatched {
                pattern: "s/nope".into(),
                meant: None,
            },
            Unmatched {
                pattern: "./runs/*.csv".into(),
                meant: meant("runs/*.csv", false),
            },
            Unmatched {
                pattern: "q[1].csv".into(),
                meant: meant("q[[]1[]].csv", true),
            },
        ];
        assert_eq!(unmatched, want);
    }
}
