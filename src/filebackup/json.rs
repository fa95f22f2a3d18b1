//! The content check of JSON copies: does it parse, and how many items does it hold. The
//! document is parsed as a stream and never kept in memory.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

/// Whether a JSON file parses and how many items its top-level arrays hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonCheck {
    /// It parses. Item counts, in document order: one per array-valued field of a top-level
    /// object, or a single one named `$` for a top-level array.
    Valid(Vec<(String, u64)>),
    /// It does not parse; the parser's message.
    Invalid(String),
}

impl JsonCheck {
    /// Whether it parses.
    pub fn parses(&self) -> bool {
        matches!(self, JsonCheck::Valid(_))
    }

    /// The item count: the length of a top-level array, or of the largest array under the top
    /// object; `None` when it does not parse or holds no array there.
    pub fn items(&self) -> Option<u64> {
        match self {
            JsonCheck::Valid(counts) => counts.iter().map(|(_, n)| *n).max(),
            JsonCheck::Invalid(_) => None,
        }
    }
}

/// Whether `path` names a JSON file, by its extension.
pub fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
}

/// Whether `head`, the start of a file, looks like a JSON document: its first byte other than
/// white space (after a UTF-8 byte order mark) opens an object or an array.
pub(super) fn looks_like_json(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    matches!(
        head.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// Parses JSON from `reader` and counts the items of its top-level arrays. I/O errors are
/// errors; anything the parser rejects is an [`JsonCheck::Invalid`].
pub(super) fn check_json(reader: impl Read) -> io::Result<JsonCheck> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = ShapeOf { top: true }
        .deserialize(&mut de)
        .and_then(|shape| de.end().map(|()| shape));
    match parsed {
        Ok(Shape::Array(n)) => Ok(JsonCheck::Valid(vec![("$".to_string(), n)])),
        Ok(Shape::Object(counts)) => Ok(JsonCheck::Valid(counts)),
        Ok(Shape::Other) => Ok(JsonCheck::Valid(Vec::new())),
        Err(e) if e.is_io() => Err(e.into()),
        Err(e) => Ok(JsonCheck::Invalid(e.to_string())),
    }
}

/// What [`check_json`] keeps of a value: an array's length, or for the top-level object the
/// lengths of its array fields. Everything else is skipped while parsing.
enum Shape {
    Array(u64),
    Object(Vec<(String, u64)>),
    Other,
}

/// Parses one value into its [`Shape`]; only the top level looks into object fields.
#[derive(Clone, Copy)]
struct ShapeOf {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for ShapeOf {
    type Value = Shape;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeOf {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Shape::Array(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        if !self.top {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Shape::Other);
        }
        let mut counts = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if let Shape::Array(n) = map.next_value_seed(ShapeOf { top: false })? {
                counts.push((key, n));
            }
        }
        Ok(Shape::Object(counts))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_check_counts_top_level_arrays() {
        let check = |text: &str| check_json(text.as_bytes()).unwrap();
        let counts = |pairs: &[(&str, u64)]| {
            JsonCheck::Valid(pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect())
        };
        let store = check(
            r#"{"experiences": [1, {"a": [1, 2]}, []], "meta": {"x": [1]}, "runs": [], "n": 1}"#,
        );
        assert_eq!(store, counts(&[("experiences", 3), ("runs", 0)]));
        assert_eq!(store.items(), Some(3));
        assert_eq!(check("[1, 2, 3]\n"), counts(&[("$", 3)]));
        assert_eq!(check("42"), counts(&[]));
        assert_eq!(check("42").items(), None);
        assert!(matches!(check(r#"{"a": [1, 2"#), JsonCheck::Invalid(m) if m.contains("EOF")));
        assert!(matches!(check(r#"{"a": []} x"#), JsonCheck::Invalid(_)));
    }

    #[test]
    fn json_is_recognised_by_its_first_character() {
        assert!(looks_like_json(b"  \n{\"a\": 1"));
        assert!(looks_like_json(b"\xef\xbb\xbf[1"));
        assert!(!looks_like_json(b"a,b\n1,2"));
        assert!(!looks_like_json(b""));
    }
}
