//! Parsing metrics files: JSON (as Python's `json.dump` writes it, bare `NaN` included), YAML
//! and two-column CSV, flattened to one name -> number map; and the numbers in metric text.

use super::Metrics;
use std::path::Path;

/// The metrics in one file's text, by its extension.
///
/// # Errors
/// The parser's message when the text is not what the extension says.
pub fn parse(rel: &Path, text: &str) -> std::result::Result<Metrics, String> {
    let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut out = Metrics::new();
    match ext {
        "json" => {
            let value: serde_json::Value =
                serde_json::from_str(&quote_bare_specials(text)).map_err(|e| e.to_string())?;
            flatten_json("", &value, &mut out);
        }
        "yaml" | "yml" => {
            let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
            flatten_yaml("", &value, &mut out);
        }
        "csv" => parse_csv(text, &mut out)?,
        other => return Err(format!("unknown metrics file type {other:?}")),
    }
    Ok(out)
}

/// Whether `key` is one of backtesting.py's private fields (`_strategy`, `_trades`, ...).
fn private(key: &str) -> bool {
    key.starts_with('_')
}

fn join(prefix: &str, key: &str) -> String {
    match prefix {
        "" => key.to_string(),
        p => format!("{p}.{key}"),
    }
}

fn flatten_json(prefix: &str, value: &serde_json::Value, out: &mut Metrics) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter().filter(|(k, _)| !private(k)) {
                flatten_json(&join(prefix, k), v, out);
            }
        }
        Value::Number(n) if !prefix.is_empty() => {
            if let Some(x) = n.as_f64() {
                out.insert(prefix.to_string(), x);
            }
        }
        // pandas writes NaN as null.
        Value::Null if !prefix.is_empty() => {
            out.insert(prefix.to_string(), f64::NAN);
        }
        Value::String(s) if !prefix.is_empty() => {
            if let Some(x) = number(s) {
                out.insert(prefix.to_string(), x);
            }
        }
        _ => {}
    }
}

fn flatten_yaml(prefix: &str, value: &serde_yaml::Value, out: &mut Metrics) {
    use serde_yaml::Value;
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let key = match k {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                if !private(&key) {
                    flatten_yaml(&join(prefix, &key), v, out);
                }
            }
        }
        Value::Tagged(tagged) => flatten_yaml(prefix, &tagged.value, out),
        _ if prefix.is_empty() => {}
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.insert(prefix.to_string(), x);
            }
        }
        Value::Null => {
            out.insert(prefix.to_string(), f64::NAN);
        }
        Value::String(s) => {
            if let Some(x) = number(s) {
                out.insert(prefix.to_string(), x);
            }
        }
        _ => {}
    }
}

/// Two columns, `key,value`, as pandas' `Series.to_csv()` writes them (its header row, whose
/// first cell is empty, is skipped); rows of another width are left out.
fn parse_csv(text: &str, out: &mut Metrics) -> std::result::Result<(), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        if let (2, Some(key), Some(value)) = (record.len(), record.get(0), record.get(1)) {
            let key = key.trim();
            if key.is_empty() || private(key) {
                continue;
            }
            if let Some(x) = number(value) {
                out.insert(key.to_string(), x);
            }
        }
    }
    Ok(())
}

/// The number a metric's text plainly says: `1.5`, `-3`, `12.5%` (12.5), `NaN`, `inf`,
/// `-Infinity`, or a pandas Timedelta (`365 days 00:00:00`, `-1 days +23:00:00`,
/// `0 days 00:00:01.500000`) in seconds. `None` for anything else.
pub fn number(text: &str) -> Option<f64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => return Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let plain = t.strip_suffix('%').unwrap_or(t).trim_end();
    let numeric = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
            && s.chars().any(|c| c.is_ascii_digit())
    };
    if numeric(plain) {
        return plain.parse().ok();
    }
    timedelta(t)
}

/// A pandas Timedelta's text in seconds: `[-]D days [+-]HH:MM:SS[.ffffff]`, or the time
/// alone.
fn timedelta(text: &str) -> Option<f64> {
    let (days, clock) = match text.split_once(" day") {
        Some((days, rest)) => {
            let rest = rest.trim_start_matches('s').trim_start();
            (days.trim().parse::<i64>().ok()?, rest)
        }
        None => (0, text),
    };
    let (sign, clock) = match clock.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, clock.strip_prefix('+').unwrap_or(clock)),
    };
    let mut parts = clock.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = |p: &str| {
        let digits = p.chars().all(|c| c.is_ascii_digit() || c == '.') && !p.is_empty();
        digits.then(|| p.parse::<f64>().ok()).flatten()
    };
    if parts.next().is_some() || h.contains('.') || m.contains('.') {
        return None;
    }
    let (h, m, s) = (valid(h)?, valid(m)?, valid(s)?);
    if m >= 60.0 || s >= 60.0 {
        return None;
    }
    Some(days as f64 * 86_400.0 + sign * (h * 3600.0 + m * 60.0 + s))
}

/// JSON as Python's `json.dump` writes it: bare `NaN`, `Infinity` and `-Infinity` (outside
/// strings) become strings, which [`number`] reads back.
fn quote_bare_specials(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let special = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|s| rest.starts_with(s));
        match special {
            Some(word) => {
                out.push('"');
                out.push_str(word);
                out.push('"');
                rest = &rest[word.len()..];
            }
            None => {
                in_string = c == '"';
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_percentages_specials_and_timedeltas() {
        assert_eq!(number("1.5"), Some(1.5));
        assert_eq!(number(" -3 "), Some(-3.0));
        assert_eq!(number("12.5%"), Some(12.5));
        assert_eq!(number("1e3"), Some(1000.0));
        assert!(number("NaN").unwrap().is_nan());
        assert!(number("nan").unwrap().is_nan());
        assert_eq!(number("inf"), Some(f64::INFINITY));
        assert_eq!(number("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(number("365 days 00:00:00"), Some(365.0 * 86_400.0));
        assert_eq!(number("12 days 00:00:00"), Some(1_036_800.0));
        assert_eq!(number("1 day 01:00:30"), Some(90_030.0));
        assert_eq!(number("0 days 00:00:01.500000"), Some(1.5));
        assert_eq!(number("-1 days +23:00:00"), Some(-3600.0));
        assert_eq!(number("02:00:00"), Some(7200.0));
        for left_out in [
            "2024-01-01 00:00:00",
            "SmaCross(n1=10,n2=50)",
            "",
            "-",
            "1.2.3x",
            "12 days",
            "10:75:00",
            "true",
        ] {
            assert_eq!(number(left_out), None, "{left_out:?}");
        }
    }

    #[test]
    fn json_numbers_are_read_to_the_exact_double_python_wrote() {
        let values: Vec<f64> = (1..3000)
            .map(|i| (f64::from(i) * 0.7311).sin() * 10f64.powi(i % 9 - 3))
            .chain([1.088_905_153_244_355_9, 0.1 + 0.2])
            .collect();
        let json = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("\"k{i}\": {v}"));
        let text = format!("{{{}}}", json.collect::<Vec<_>>().join(", "));
        let read = parse(Path::new("stats.json"), &text).unwrap();
        for (i, value) in values.iter().enumerate() {
            assert_eq!(read[&format!("k{i}")].to_bits(), value.to_bits(), "{value}");
        }
    }

    #[test]
    fn nested_json_is_flattened_and_private_fields_skipped() {
        let text = r#"{"sharpe": 1.2, "risk": {"dd": -0.2, "var": {"95": "3%"}},
            "name": "x", "list": [1, 2], "_equity_curve": {"Equity": {"0": 1}},
            "ok": true, "missing": null, "bad": NaN, "up": Infinity, "s": "NaN in text"}"#;
        let m = parse(Path::new("stats.json"), text).unwrap();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["bad", "missing", "risk.dd", "risk.var.95", "sharpe", "up"]
        );
        assert_eq!(m["risk.var.95"], 3.0);
        assert!(m["bad"].is_nan() && m["missing"].is_nan());
        assert_eq!(m["up"], f64::INFINITY);
    }

    #[test]
    fn pandas_csv_and_yaml() {
        let csv = ",0\nStart,2024-01-01 00:00:00\nDuration,365 days 00:00:00\n\
                   \"Equity Final [$]\",10523.1\nSharpe Ratio,NaN\n_strategy,SmaCross\nodd,1,2\n";
        let m = parse(Path::new("stats.csv"), csv).unwrap();
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m["Equity Final [$]"], 10523.1);
        assert_eq!(m["Duration"], 31_536_000.0);
        let yaml = "sharpe: 1.5\nnested:\n  win_rate: 55%\n  when: 2024-01-01\ninf: .inf\n";
        let m = parse(Path::new("metrics.yaml"), yaml).unwrap();
        assert_eq!(m["nested.win_rate"], 55.0);
        assert_eq!(m["inf"], f64::INFINITY);
        assert!(!m.contains_key("nested.when"));
        assert!(parse(Path::new("stats.json"), "{not json").is_err());
    }
}
