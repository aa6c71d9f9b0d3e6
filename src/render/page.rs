//! PLACEHOLDER for the `page` branch's app page (issue 13): the same API, minimal output.
//! The lead takes the `page` branch's version of this file on merge.

use crate::domain::{Course, Timestamp};

/// What the page shows.
pub struct PageInput<'a> {
    /// `None`: no CAR-T infusion on record.
    pub course: Option<&'a Course>,
    /// Display name and birth date from the Patient resource, or "".
    pub patient_label: &'a str,
    /// Gather/adapter issues (what could not be read), in clinician words.
    pub data_issues: &'a [String],
    /// The evaluation instant.
    pub now: Timestamp,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The complete HTML5 document of the app page.
pub fn course_page(input: &PageInput<'_>) -> String {
    let body = match input.course {
        Some(c) => super::course_svg(c),
        None => "<p>No CAR-T infusion on record: there is no course to show.</p>".to_string(),
    };
    let issues: String = input
        .data_issues
        .iter()
        .map(|i| format!("<li>{}</li>", escape(i)))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>CRS/ICANS course</title><link rel=\"stylesheet\" href=\"/app/static/app.css\"><script src=\"/app/static/app.js\" defer></script></head><body><h1>CRS/ICANS course</h1><p>{}</p>{body}<ul>{issues}</ul></body></html>\n",
        escape(input.patient_label)
    )
}

/// The page's style sheet (`/app/static/app.css`).
pub const APP_CSS: &str = "body{font-family:sans-serif}\n";
/// The page's script (`/app/static/app.js`).
pub const APP_JS: &str = "\"use strict\";\n";
