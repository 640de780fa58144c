//! The self-contained HTML report: the JSON report embedded in one page whose inline script
//! draws SVG charts (no network access needed to view it).

use crate::report::Report;

const TEMPLATE: &str = include_str!("report.html");
const PLACEHOLDER: &str = "\"__REPORT_JSON__\"";

/// Renders `report` as one HTML page.
pub fn render(report: &Report) -> anyhow::Result<String> {
    // `</` inside a script element would end it early; JSON allows escaping the slash.
    let json = serde_json::to_string(report)?.replace("</", "<\\/");
    let title = html_escape(&report.scenario);
    Ok(TEMPLATE
        .replace("__TITLE__", &title)
        .replacen(PLACEHOLDER, &json, 1))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
