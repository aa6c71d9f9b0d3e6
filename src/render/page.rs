//! The app page (issue 13): one HTML5 document with the course chart (interactive through
//! `app.js`), the episodes table (the chart's text alternative), the treatment counts and
//! the data gaps, in the words of the cards (RULES.md §7 S14: clinician units, relative and
//! absolute times, no resource or rule ids).
//!
//! The page references only [`CSS_PATH`] and [`JS_PATH`]: no inline script, no `style`
//! attribute, no external resource, so it runs under `default-src 'none'; script-src 'self';
//! style-src 'self'; img-src 'self' data:`. Every text from the record is HTML-escaped.
//!
//! Missing data never reads as "no toxicity": no infusion on record is a page of its own,
//! not an empty chart; not-assessable stretches are hatched on the chart and listed as gaps;
//! a lower-bound grade is written "≥" (RULES.md §7 S13).

use std::fmt::Write;

use super::chart::{Layout, Mode, svg};
use crate::domain::{
    Course, Episode, GradeState, Syndrome, SyndromeCourse, TOCILIZUMAB_MAX_PER_24H,
    TOCILIZUMAB_MAX_PER_EPISODE, Timestamp,
};
use crate::protocol::cards::text::{absolute, one_decimal, when, without_rule_ids};
use crate::protocol::course::course_line;

/// The stylesheet, served at [`CSS_PATH`].
pub const APP_CSS: &str = include_str!("assets/app.css");

/// The script, served at [`JS_PATH`].
pub const APP_JS: &str = include_str!("assets/app.js");

/// Where the page expects the stylesheet.
pub const CSS_PATH: &str = "/app/static/app.css";

/// Where the page expects the script.
pub const JS_PATH: &str = "/app/static/app.js";

/// What the page shows.
pub struct PageInput<'a> {
    /// The course; `None`: no CAR-T infusion on record.
    pub course: Option<&'a Course>,
    /// Display name and birth date from the Patient resource, or "".
    pub patient_label: &'a str,
    /// What could not be read (gather and adapter issues), in clinician words.
    pub data_issues: &'a [String],
    /// The instant the page is computed at.
    pub now: Timestamp,
}

/// HTML-escapes text for element content and quoted attribute values (the one escape of
/// every HTML page the service writes: this page, the app's error pages, the landing page,
/// the demo EHR).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
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

/// A span of hours as clinicians say it: "45 min", "18 h", "3 d 4 h".
fn span(hours: f64) -> String {
    let minutes = (hours * 60.0).round() as i64;
    if minutes < 60 {
        format!("{minutes} min")
    } else if minutes < 48 * 60 {
        format!("{} h", minutes / 60)
    } else {
        let h = minutes / 60;
        match h % 24 {
            0 => format!("{} d", h / 24),
            r => format!("{} d {r} h", h / 24),
        }
    }
}

/// A grade state in words: "2", "≥ 1 (lower bound)", "not assessable".
fn state_words(s: GradeState) -> String {
    match s {
        GradeState::Graded(g) => format!("grade {g}"),
        GradeState::AtLeast(g) => format!("grade ≥ {g} (lower bound)"),
        GradeState::NotAssessable => "not assessable".into(),
    }
}

fn state_class(s: GradeState) -> &'static str {
    match s {
        GradeState::Graded(0) => "state-zero",
        GradeState::Graded(_) => "state-graded",
        GradeState::AtLeast(_) => "state-lower",
        GradeState::NotAssessable => "state-na",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The complete HTML5 document.
pub fn course_page(input: &PageInput<'_>) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>CRS/ICANS course · crs-cds</title>
<link rel="stylesheet" href="{CSS_PATH}">
<script src="{JS_PATH}" defer></script>
</head>
<body>
"#
    );
    header(&mut s, input);
    s.push_str("<main id=\"main\">\n");
    match input.course {
        None => no_course(&mut s, input),
        Some(c) => course_body(&mut s, c, input),
    }
    s.push_str("</main>\n");
    s.push_str(
        r#"<footer class="app-footer"><p>Computed by crs-cds from the record the EHR sent, for review by the treating team: grades by the ASTCT 2019 consensus (Lee et al. 2019). Research software, not clinically validated. Missing data is shown as missing, never as a normal grade.</p></footer>
</body>
</html>
"#,
    );
    s
}

fn header(s: &mut String, input: &PageInput<'_>) {
    let label = if input.patient_label.trim().is_empty() {
        "<span class=\"muted\">name not available</span>".to_string()
    } else {
        escape_html(input.patient_label)
    };
    let _ = write!(
        s,
        r#"<header class="app-header">
<div class="brand"><span class="brand-name">CRS/ICANS course</span><span class="brand-sub">ASTCT 2019 grading after CAR-T therapy</span></div>
<p class="patient"><span class="patient-key">Patient</span> <span id="patient-label" class="patient-label">{label}</span></p>
<dl class="facts">
<div><dt>As of</dt><dd id="as-of">{}</dd></div>
"#,
        absolute(input.now)
    );
    if let Some(c) = input.course {
        let _ = writeln!(
            s,
            r#"<div><dt>Infusion</dt><dd id="infusion-day">day {} after CAR-T infusion ({})</dd></div>"#,
            c.day(input.now),
            escape_html(&when(c.infusion, input.now))
        );
    }
    s.push_str("</dl>\n</header>\n");
}

fn no_course(s: &mut String, input: &PageInput<'_>) {
    s.push_str(
        r#"<section class="panel notice" id="no-course" aria-labelledby="no-course-heading">
<h1 id="no-course-heading">No CAR-T infusion on record</h1>
<p>The record the EHR sent holds no CAR-T infusion, so there is no CRS/ICANS course to draw. This is not a finding of no CRS or ICANS: if this patient received CAR-T cells, the infusion is not in the record in a form this service reads, and nothing here can be used to rule out toxicity.</p>
</section>
"#,
    );
    if !input.data_issues.is_empty() {
        s.push_str(
            r#"<section class="panel gaps" aria-labelledby="gaps-heading">
<h2 id="gaps-heading">What could not be read</h2>
<ul class="gap-list">
"#,
        );
        for i in input.data_issues {
            let _ = writeln!(s, "<li class=\"data-issue\">{}</li>", escape_html(i));
        }
        s.push_str("</ul>\n</section>\n");
    }
}

fn course_body(s: &mut String, c: &Course, input: &PageInput<'_>) {
    let now = input.now;
    s.push_str("<h1 class=\"visually-hidden\">CRS and ICANS course</h1>\n");
    status(s, c);
    s.push_str("<div class=\"layout\">\n<div class=\"col col-chart\">\n");
    let _ = write!(
        s,
        r##"<section class="panel chart-panel" aria-labelledby="chart-heading">
<h2 id="chart-heading">Grades over time</h2>
<a class="skip-link" href="#episodes-heading">Skip the chart's points: go to the episodes table</a>
<div class="chart-wrap">
{}{}</div>
<p id="chart-help" class="help">Filled dot: graded. Hollow dot: lower bound, the true grade may be higher. Hatched: not assessable, never grade 0. Point, tap or Tab to a dot for its grade, evidence and time; Escape closes. The episodes table gives the same course as text.</p>
<div id="point-details" class="details" role="status" aria-live="polite" hidden>
<div class="details-head"><strong id="details-title" class="details-title"></strong><button type="button" id="details-close" class="details-close" aria-label="Close the details">Close</button></div>
<p id="details-time" class="details-time"></p>
<ul id="details-evidence" class="details-evidence"></ul>
</div>
</section>
"##,
        svg(c, Mode::Page { now }, Layout::Wide),
        svg(c, Mode::Page { now }, Layout::Narrow)
    );
    gaps(s, c, input);
    s.push_str("</div>\n<div class=\"col col-tables\">\n");
    episodes(s, c, now);
    time_at_grade(s, c);
    treatment(s, c, now);
    s.push_str("</div>\n</div>\n");
}

/// The current state of each syndrome and the card's course line.
fn status(s: &mut String, c: &Course) {
    s.push_str("<section class=\"status\" aria-label=\"Current grades\">\n<div class=\"tiles\">\n");
    for syn in [Syndrome::Crs, Syndrome::Icans] {
        let st = c.now().map_or(GradeState::NotAssessable, |p| p.state(syn));
        let at = c.now().map_or(c.until, |p| p.at);
        let _ = writeln!(
            s,
            r#"<div class="tile {}" id="now-{}"><span class="tile-key">{} now</span><span class="tile-value">{}</span><span class="tile-sub">at {}</span></div>"#,
            state_class(st),
            syn.name().to_lowercase(),
            syn.name(),
            escape_html(&state_words(st)),
            escape_html(&absolute(at))
        );
    }
    s.push_str("</div>\n");
    if let Some(line) = course_line(c) {
        let _ = writeln!(
            s,
            "<p class=\"course-line\" id=\"course-line\">{}</p>",
            escape_html(&without_rule_ids(&line))
        );
    }
    s.push_str("</section>\n");
}

fn episode_row(s: &mut String, c: &Course, e: &Episode, now: Timestamp) {
    // "day 4" over "14 h ago," and "2026-03-10 00:10 UTC", each kept on one line.
    let cell = |day: String, t: Timestamp| {
        let parts: Vec<String> = when(t, now)
            .split(", ")
            .map(|p| format!("<span class=\"nowrap\">{}</span>", escape_html(p)))
            .collect();
        format!(
            "{}<span class=\"when\">{}</span>",
            escape_html(&day),
            parts.join(", ")
        )
    };
    let onset = if e.onset_censored {
        cell(format!("day {} or earlier", c.day(e.onset)), e.onset)
    } else {
        cell(format!("day {}", c.day(e.onset)), e.onset)
    };
    let end = match e.resolution {
        Some(r) => cell(format!("resolved day {}", c.day(r)), r),
        None => format!(
            "ongoing<span class=\"when {}\">now {}</span>",
            state_class(e.last),
            escape_html(&state_words(e.last))
        ),
    };
    let peak = format!(
        "{}{} on day {}{}",
        if e.worst_lower_bound { "≥ " } else { "" },
        e.worst,
        c.day(e.worst_at),
        if e.worst_lower_bound {
            " (lower bound: the true grade may be higher)"
        } else {
            ""
        }
    );
    let hours = e.end_or(c.until).hours_since(e.onset).0;
    let duration = format!(
        "{}{}{}",
        if e.onset_censored { "≥ " } else { "" },
        span(hours),
        if e.resolution.is_none() {
            " so far"
        } else {
            ""
        }
    );
    let doses = c.treatment.tocilizumab_in(e, c.until);
    let tocilizumab = match e.syndrome {
        Syndrome::Crs => format!("{doses} of {TOCILIZUMAB_MAX_PER_EPISODE}"),
        Syndrome::Icans => doses.to_string(),
    };
    let _ = writeln!(
        s,
        r#"<tr class="episode-row" data-syndrome="{}"><th scope="row">{}</th><td>{}</td><td>{}</td><td class="peak">{}</td><td>{}</td><td>{}</td></tr>"#,
        e.syndrome.name().to_lowercase(),
        e.syndrome.name(),
        onset,
        end,
        escape_html(&peak),
        escape_html(&duration),
        escape_html(&tocilizumab),
    );
}

fn episodes(s: &mut String, c: &Course, now: Timestamp) {
    let _ = write!(
        s,
        r#"<section class="panel" aria-labelledby="episodes-heading">
<h2 id="episodes-heading" tabindex="-1">Episodes</h2>
<div class="table-scroll" tabindex="0" role="region" aria-labelledby="episodes-caption">
<table class="episodes">
<caption id="episodes-caption">CRS and ICANS episodes from day {} to day {}: the chart as text</caption>
<thead><tr><th scope="col">Syndrome</th><th scope="col">Onset</th><th scope="col">End</th><th scope="col">Peak grade</th><th scope="col">Duration</th><th scope="col">Tocilizumab</th></tr></thead>
<tbody>
"#,
        c.day(c.start),
        c.day(c.until)
    );
    let mut any = false;
    for sc in [&c.crs, &c.icans] {
        for e in &sc.episodes {
            episode_row(s, c, e, now);
            any = true;
        }
    }
    if !any {
        let unassessed: Vec<String> = [&c.crs, &c.icans]
            .iter()
            .filter(|sc| sc.not_assessable_hours() > 0.0)
            .map(|sc| {
                format!(
                    "{} not assessable for {}",
                    sc.syndrome.name(),
                    span(sc.not_assessable_hours())
                )
            })
            .collect();
        let mut text = format!(
            "No CRS or ICANS episode in the data from day {} to day {}",
            c.day(c.start),
            c.day(c.until)
        );
        if !unassessed.is_empty() || c.data_gap_day.is_some() {
            text.push_str(": not proof of no toxicity (");
            let mut why = unassessed;
            if let Some(d) = c.data_gap_day {
                why.push(format!("no data sent before day {d}"));
            }
            text.push_str(&why.join("; "));
            text.push(')');
        }
        let _ = writeln!(
            s,
            "<tr class=\"empty-row\"><td colspan=\"6\">{}</td></tr>",
            escape_html(&text)
        );
    }
    s.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn time_at_grade(s: &mut String, c: &Course) {
    s.push_str(
        r#"<section class="panel" aria-labelledby="time-heading">
<h2 id="time-heading">Time at each grade</h2>
<div class="table-scroll" tabindex="0" role="region" aria-labelledby="time-caption">
<table class="time-at-grade">
<caption id="time-caption">Hours at each exact grade, as a lower bound, and not assessable</caption>
<thead><tr><th scope="col">Syndrome</th><th scope="col">0</th><th scope="col">1</th><th scope="col">2</th><th scope="col">3</th><th scope="col">4</th><th scope="col">Lower bound</th><th scope="col">Not assessable</th></tr></thead>
<tbody>
"#,
    );
    for sc in [&c.crs, &c.icans] {
        let _ = write!(s, "<tr><th scope=\"row\">{}</th>", sc.syndrome.name());
        for h in sc.hours_at_grade {
            let _ = write!(s, "<td>{}</td>", hours_cell(h));
        }
        let _ = writeln!(
            s,
            "<td>{}</td><td class=\"{}\">{}</td></tr>",
            hours_cell(sc.hours_at_least.iter().sum()),
            if sc.not_assessable_hours() > 0.0 {
                "state-na"
            } else {
                ""
            },
            hours_cell(sc.not_assessable_hours())
        );
    }
    s.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn hours_cell(h: f64) -> String {
    if h == 0.0 {
        "–".to_string()
    } else {
        format!("{} h", one_decimal(h))
    }
}

/// The doses in words, consecutive doses of the same drug and amount grouped:
/// "dexamethasone 10 mg × 6, first 4 d ago, 2026-11-07 10:00 UTC, last 2 d ago, …".
fn dose_list(doses: &[crate::domain::Dose], now: Timestamp, decimals: bool) -> String {
    let amount = |d: &crate::domain::Dose| {
        d.mg.map_or("dose not stated".to_string(), |m| {
            if decimals {
                format!("{} mg", one_decimal(m))
            } else {
                format!("{m:.0} mg")
            }
        })
    };
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(first) = doses.get(i) {
        let n = doses[i..]
            .iter()
            .take_while(|d| d.drug == first.drug && amount(d) == amount(first))
            .count();
        let last = &doses[i + n - 1];
        out.push(if n == 1 {
            format!(
                "{} {}, {}",
                first.drug.key(),
                amount(first),
                when(first.at, now)
            )
        } else {
            format!(
                "{} {} × {n}, first {}, last {}",
                first.drug.key(),
                amount(first),
                when(first.at, now),
                when(last.at, now)
            )
        });
        i += n;
    }
    out.join("; ")
}

fn treatment(s: &mut String, c: &Course, now: Timestamp) {
    let t = &c.treatment;
    s.push_str(
        r#"<section class="panel" aria-labelledby="treatment-heading">
<h2 id="treatment-heading">Treatment since the infusion</h2>
<div class="table-scroll" tabindex="0" role="region" aria-labelledby="treatment-caption">
<table class="treatment">
<caption id="treatment-caption">Doses given and support received since the infusion, with the tocilizumab limits</caption>
<tbody>
"#,
    );
    let row = |s: &mut String, id: &str, name: &str, value: String, warn: bool| {
        let _ = writeln!(
            s,
            r#"<tr id="treatment-{id}"><th scope="row">{name}</th><td{}>{}</td></tr>"#,
            if warn { " class=\"warn\"" } else { "" },
            escape_html(&value)
        );
    };
    // Tocilizumab: count, 24 h maximum against the limit, the open CRS episode's doses.
    let open_episode_doses = c
        .crs
        .episodes
        .last()
        .filter(|e| e.resolution.is_none())
        .map(|e| t.tocilizumab_in(e, c.until));
    let toci = if t.tocilizumab.is_empty() {
        "none recorded".to_string()
    } else {
        let mut v = format!(
            "{}; most in any 24 h: {} (limit {TOCILIZUMAB_MAX_PER_24H})",
            plural(t.tocilizumab.len(), "dose", "doses"),
            t.tocilizumab_max_24h
        );
        if let Some(n) = open_episode_doses {
            let _ = write!(
                v,
                "; this CRS episode: {n} of {TOCILIZUMAB_MAX_PER_EPISODE}"
            );
        }
        let _ = write!(v, ". {}", dose_list(&t.tocilizumab, now, false));
        v
    };
    let at_limit = t.tocilizumab_max_24h >= TOCILIZUMAB_MAX_PER_24H
        || open_episode_doses.is_some_and(|n| n >= TOCILIZUMAB_MAX_PER_EPISODE);
    row(s, "tocilizumab", "Tocilizumab", toci, at_limit);
    let st = &t.steroids;
    let steroids = if st.doses.is_empty() {
        "none recorded".to_string()
    } else {
        let mut v = format!(
            "{} on {}; dexamethasone equivalent {} mg",
            plural(st.doses.len(), "dose", "doses"),
            plural(st.days_on_steroids, "day", "days"),
            one_decimal(st.dexamethasone_equivalent_mg)
        );
        if st.doses_without_mg > 0 {
            let _ = write!(
                v,
                " ({} without a stated dose, not in the total)",
                plural(st.doses_without_mg, "dose", "doses")
            );
        }
        if st.high_dose_run_days > 0 {
            let _ = write!(
                v,
                "; {} in a row at dexamethasone 10 mg q6h-equivalent or more",
                plural(st.high_dose_run_days, "day", "days")
            );
        }
        if st.prolonged_high_dose() {
            v.push_str(": prolonged high-dose steroids (antifungal prophylaxis, CMV monitoring, taper; expert summary)");
        }
        let _ = write!(v, ". {}", dose_list(&st.doses, now, true));
        v
    };
    row(
        s,
        "steroids",
        "Corticosteroids",
        steroids,
        st.prolonged_high_dose(),
    );
    for (id, name, doses) in [
        ("anakinra", "Anakinra", &t.anakinra),
        ("siltuximab", "Siltuximab", &t.siltuximab),
    ] {
        let v = if doses.is_empty() {
            "none recorded".to_string()
        } else {
            format!(
                "{}. {}",
                plural(doses.len(), "dose", "doses"),
                dose_list(doses, now, true)
            )
        };
        row(s, id, name, v, false);
    }
    let pressors = if t.vasopressor_hours > 0.0 {
        format!("{} with a vasopressor running", span(t.vasopressor_hours))
    } else {
        "none recorded".to_string()
    };
    row(s, "vasopressors", "Vasopressors", pressors, false);
    let oxygen: Vec<String> = t
        .oxygen_hours
        .iter()
        .filter(|(_, h)| *h > 0.0)
        .map(|(k, h)| format!("{k}: {}", span(*h)))
        .collect();
    row(
        s,
        "oxygen",
        "Oxygen support",
        if oxygen.is_empty() {
            "none recorded".to_string()
        } else {
            oxygen.join("; ")
        },
        false,
    );
    s.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn syndrome_gaps(c: &Course, sc: &SyndromeCourse, now: Timestamp) -> Vec<String> {
    let mut out = Vec::new();
    let name = sc.syndrome.name();
    for n in &sc.not_assessable {
        out.push(format!(
            "{name} not assessable from {} to {} ({}): not graded, never read as grade 0",
            when(n.start, now),
            when(n.end, now),
            span(n.hours())
        ));
    }
    let lower: f64 = sc.hours_at_least.iter().sum();
    if lower > 0.0 {
        out.push(format!(
            "{name} only a lower bound for {} (a domain such as blood pressure or oxygen could not be assessed): the true grade may be higher",
            span(lower)
        ));
    }
    for e in sc.episodes.iter().filter(|e| e.onset_censored) {
        out.push(format!(
            "{name} episode of day {}: no grade-0 data before it, it may have begun earlier",
            c.day(e.onset)
        ));
    }
    out
}

fn gaps(s: &mut String, c: &Course, input: &PageInput<'_>) {
    let now = input.now;
    s.push_str(
        r#"<section class="panel gaps" aria-labelledby="gaps-heading">
<h2 id="gaps-heading">Data gaps</h2>
<ul class="gap-list">
"#,
    );
    let mut n = 0;
    if let Some(day) = c.data_gap_day {
        let from = c.data_from.map_or_else(
            || "no vital-sign or neurological observation was sent".to_string(),
            |t| format!("the first observation sent is from {}", when(t, now)),
        );
        let _ = writeln!(
            s,
            "<li class=\"gap data-gap\">Data from day {day} only: earlier data was not sent ({}), so the course before day {day} is unknown, not grade 0</li>",
            escape_html(&from)
        );
        n += 1;
    }
    for sc in [&c.crs, &c.icans] {
        for g in syndrome_gaps(c, sc, now) {
            let _ = writeln!(s, "<li class=\"gap\">{}</li>", escape_html(&g));
            n += 1;
        }
    }
    let unstated = c
        .treatment
        .tocilizumab
        .iter()
        .filter(|d| d.mg.is_none())
        .count();
    if unstated > 0 {
        let _ = writeln!(
            s,
            "<li class=\"gap\">{} without a stated dose</li>",
            escape_html(&plural(unstated, "tocilizumab dose", "tocilizumab doses"))
        );
        n += 1;
    }
    for i in input.data_issues {
        let _ = writeln!(s, "<li class=\"gap data-issue\">{}</li>", escape_html(i));
        n += 1;
    }
    if n == 0 {
        s.push_str("<li class=\"gap-none\">None found: every instant of the course was graded from the data sent, and every resource was read.</li>\n");
    }
    s.push_str("</ul>\n</section>\n");
}

#[cfg(test)]
mod tests;
