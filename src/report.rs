//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, nothing fetched
//! from the network) with, per strategy, a chart of each chosen metric and of the archive size
//! over time, and the table of its backups with their tags.

use crate::manifest::Entry;
use crate::metrics::format_value;
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// The first line of every report, by which `report` knows a file it may replace.
pub const MARK: &str = "<!DOCTYPE html>\n<!-- resbak report -->";

/// Metrics drawn when none are configured, in this order of preference (backtesting.py's
/// names first).
pub const PREFERRED: [&str; 8] = [
    "Sharpe Ratio",
    "Return [%]",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "sharpe",
    "total_return",
    "max_drawdown",
    "win_rate",
];

/// How many metrics are drawn when none are configured.
const DEFAULT_CHARTS: usize = 3;

/// One strategy's part of the report.
pub struct Strategy<'m> {
    /// Its name.
    pub name: String,
    /// Its backups, oldest first.
    pub entries: Vec<&'m Entry>,
    /// The metrics drawn and shown as columns.
    pub metrics: Vec<String>,
}

impl<'m> Strategy<'m> {
    /// The strategy `name` with `entries` (oldest first); draws `wanted` when set (those it
    /// has), else [`PREFERRED`] metrics it has, else its first top-level metrics.
    pub fn new(name: &str, entries: Vec<&'m Entry>, wanted: &[String]) -> Strategy<'m> {
        let has = |key: &str| {
            entries
                .iter()
                .any(|e| e.metrics.as_ref().is_some_and(|m| m.contains_key(key)))
        };
        let mut metrics: Vec<String> = match wanted.is_empty() {
            false => wanted.iter().filter(|k| has(k)).cloned().collect(),
            true => PREFERRED
                .iter()
                .filter(|k| has(k))
                .map(|k| k.to_string())
                .collect(),
        };
        if wanted.is_empty() && metrics.is_empty() {
            let mut keys: Vec<&String> = entries
                .iter()
                .filter_map(|e| e.metrics.as_ref())
                .flat_map(|m| m.keys())
                .filter(|k| !k.contains(':'))
                .collect();
            keys.sort();
            keys.dedup();
            metrics = keys.into_iter().cloned().collect();
        }
        metrics.truncate(if wanted.is_empty() {
            DEFAULT_CHARTS
        } else {
            usize::MAX
        });
        Strategy {
            name: name.to_string(),
            entries,
            metrics,
        }
    }
}

/// The whole page.
pub fn render(strategies: &[Strategy], generated: DateTime<Utc>) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "{MARK}\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"generator\" content=\"resbak\">\n<title>resbak report</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>Backtest results catalogue</h1>\n\
         <p class=\"generated\">Generated {} UTC by resbak from the backup catalogue.</p>\n",
        generated.format("%Y-%m-%d %H:%M")
    );
    if strategies.is_empty() {
        page.push_str("<p>No backups.</p>\n");
    }
    for strategy in strategies {
        section(&mut page, strategy);
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn section(page: &mut String, s: &Strategy) {
    let _ = write!(
        page,
        "<section class=\"strategy\" id=\"{}\">\n<h2>{}</h2>\n<p>{} backups, {} to {}</p>\n\
         <div class=\"charts\">\n",
        escape(&format!("strategy-{}", s.name)),
        escape(&s.name),
        s.entries.len(),
        s.entries.first().map_or(String::new(), |e| day(e.created)),
        s.entries.last().map_or(String::new(), |e| day(e.created)),
    );
    for metric in &s.metrics {
        let points = s
            .entries
            .iter()
            .filter_map(|e| Some((e.created, *e.metrics.as_ref()?.get(metric)?)))
            .collect::<Vec<_>>();
        chart(page, metric, &points, &|v| format_value(v));
    }
    let sizes: Vec<_> = s
        .entries
        .iter()
        .map(|e| (e.created, e.size as f64))
        .collect();
    chart(page, "Archive size", &sizes, &|v| size(v.max(0.0) as u64));
    page.push_str("</div>\n");
    table(page, s);
    page.push_str("</section>\n");
}

fn table(page: &mut String, s: &Strategy) {
    page.push_str(
        "<table class=\"backups\">\n<thead><tr><th>Archive</th><th>Created (UTC)</th><th>Size</th>",
    );
    for metric in &s.metrics {
        let _ = write!(page, "<th>{}</th>", escape(metric));
    }
    page.push_str("<th>Tags</th><th>Note</th></tr></thead>\n<tbody>\n");
    for e in s.entries.iter().rev() {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td>",
            escape(&e.backup_file),
            e.created.format("%Y-%m-%d %H:%M:%S"),
            size(e.size)
        );
        for metric in &s.metrics {
            let value = e.metrics.as_ref().and_then(|m| m.get(metric));
            let _ = write!(
                page,
                "<td class=\"num\">{}</td>",
                value.map_or("-".to_string(), |v| format_value(*v))
            );
        }
        let mut tags: Vec<String> = e
            .tags
            .iter()
            .map(|t| format!("<span class=\"tag\">{}</span>", escape(t)))
            .collect();
        if e.pin {
            tags.push("<span class=\"tag pin\">pinned</span>".into());
        }
        let _ = writeln!(
            page,
            "<td>{}</td><td>{}</td></tr>",
            tags.join(" "),
            escape(e.note.as_deref().unwrap_or(""))
        );
    }
    page.push_str("</tbody>\n</table>\n");
}

const WIDTH: f64 = 420.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// An inline SVG line chart of `points` (finite values only) titled `title`.
fn chart(
    page: &mut String,
    title: &str,
    points: &[(DateTime<Utc>, f64)],
    label: &dyn Fn(f64) -> String,
) {
    let points: Vec<(DateTime<Utc>, f64)> = points
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let _ = write!(
        page,
        "<figure class=\"chart\">\n<figcaption>{}</figcaption>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{} over time\">\n",
        escape(title),
        escape(title)
    );
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        page.push_str("<text x=\"50%\" y=\"50%\" text-anchor=\"middle\">no values</text>\n</svg>\n</figure>\n");
        return;
    };
    let (t0, t1) = (first.0.timestamp() as f64, last.0.timestamp() as f64);
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    };
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |t: DateTime<Utc>| match t1 > t0 {
        true => LEFT + (t.timestamp() as f64 - t0) / (t1 - t0) * plot_w,
        false => LEFT + plot_w / 2.0,
    };
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * plot_h;
    let _ = write!(
        page,
        "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\"/>\n\
         <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
         <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
         <text class=\"axis\" x=\"{LEFT}\" y=\"{}\">{}</text>\n\
         <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
        LEFT - 4.0,
        TOP + 10.0,
        escape(&label(hi)),
        LEFT - 4.0,
        TOP + plot_h,
        escape(&label(lo)),
        HEIGHT - 8.0,
        day(first.0),
        WIDTH - RIGHT,
        HEIGHT - 8.0,
        day(last.0),
    );
    let line: Vec<String> = points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let _ = writeln!(
        page,
        "<polyline class=\"line\" points=\"{}\"/>",
        line.join(" ")
    );
    for (t, v) in &points {
        let _ = writeln!(
            page,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"><title>{} UTC: {}</title></circle>",
            x(*t),
            y(*v),
            t.format("%Y-%m-%d %H:%M"),
            escape(&label(*v))
        );
    }
    page.push_str("</svg>\n</figure>\n");
}

fn size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ddd}\
.generated{color:#666}.charts{display:flex;flex-wrap:wrap;gap:1em}\
figure{margin:0;border:1px solid #eee;padding:.5em}figcaption{font-weight:600;font-size:.9em}\
.frame{fill:#fafafa;stroke:#ccc}.line{fill:none;stroke:#2a6fdb;stroke-width:2}\
.point{fill:#2a6fdb}.axis{font-size:10px;fill:#555}\
table{border-collapse:collapse;margin-top:1em;font-size:.85em}\
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;white-space:nowrap}.num{text-align:right}\
.tag{background:#e8f0fe;border-radius:3px;padding:0 .3em;margin-right:.2em}.pin{background:#fde8e8}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_escapes_names() {
        let mut a = Entry::sample("s<x>", "a.tar.gz", 1_700_000_000);
        a.metrics = Some([("Sharpe Ratio".to_string(), 1.5)].into());
        a.tags = vec!["paper&v2".into()];
        let mut b = Entry::sample("s<x>", "b.tar.gz", 1_700_086_400);
        b.metrics = Some([("Sharpe Ratio".to_string(), f64::NAN)].into());
        let strategy = Strategy::new("s<x>", vec![&a, &b], &[]);
        assert_eq!(strategy.metrics, ["Sharpe Ratio"]);
        let page = render(&[strategy], DateTime::from_timestamp(0, 0).unwrap());
        assert!(page.starts_with(MARK));
        assert!(!page.contains("<script") && !page.contains("http://example"));
        assert!(page.contains("s&lt;x&gt;") && !page.contains("s<x>"));
        assert!(page.contains("paper&amp;v2"));
        assert_eq!(page.matches("<svg").count(), 2, "one metric and the size");
        assert_eq!(page.matches("<circle").count(), 1 + 2, "NaN is not drawn");
    }
}
