//! The course chart: days since infusion on x; CRS (solid) and ICANS (dashed) grades
//! as step lines, not-assessable stretches hatched (never drawn as 0); tocilizumab
//! (triangles) and corticosteroid (squares) doses as markers; vasopressor and oxygen
//! bars. Black, greys and line styles only, so it prints in grey scale; every mark
//! carries a `<title>` tooltip.
//!
//! Two modes: the standalone file of `crs-cds course --svg` (times in RFC 3339, resource
//! references), and the chart inlined in the app page ([`Mode::Page`]): every grade point
//! and not-assessable stretch is focusable (`tabindex="0"`, button semantics, an
//! `aria-label`) and carries `data-` attributes for `app.js`'s details panel, and times and
//! evidence are in clinician words (RULES.md §7 S14). Marks meant to be read keep a
//! contrast of at least 3:1 against the white background (WCAG 2.1 SC 1.4.11; a test
//! computes it from the colours written here); gridlines are `class="decor"`.
//!
//! Two layouts ([`Layout`]): the wide chart (960 units, the file and the page from 820 px)
//! and the narrow chart of the page in an EHR side panel (420 units, so 13-unit labels render
//! at 10 px or more in a 350 px column): lane labels above their lane, the title and legend on
//! two lines each, and only as many day labels as fit without touching.

use std::fmt::Write;

use crate::domain::{Course, CoursePoint, GradeState, OXYGEN_CLASSES, Syndrome, Timestamp};
use crate::protocol::cards::text::{clinician_units, when, without_rule_ids};
use crate::protocol::format_time;

use super::page::escape_html as esc;

/// How the chart is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The standalone SVG file (CLI).
    File,
    /// Inlined in the app page, seen at `now`.
    Page {
        /// The instant the page is seen at (relative times).
        now: Timestamp,
    },
}

impl Mode {
    fn time(self, t: Timestamp) -> String {
        match self {
            Mode::File => format_time(t),
            Mode::Page { now } => when(t, now),
        }
    }

    /// " at 2026-03-10T08:24:00Z" (file) or ", 2 h ago, 08:24 UTC" (page).
    fn at(self, t: Timestamp) -> String {
        match self {
            Mode::File => format!(" at {}", format_time(t)),
            Mode::Page { now } => format!(", {}", when(t, now)),
        }
    }
}

/// The fill of each oxygen device class (low flow to mechanical ventilation): greys of at
/// least 3:1 against white, darker for more support.
pub(crate) const OXYGEN_SHADES: [&str; 4] = ["#8c8c8c", "#6b6b6b", "#4a4a4a", "#1a1a1a"];

/// The chart's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// 960 units wide: the CLI file, and the page from 820 px (app.css).
    Wide,
    /// 420 units wide: the page in a narrow column (an EHR side panel, issue 13).
    Narrow,
}

/// The page's label size in user units (app.css `.course-chart { font-size: 13px }`).
pub(crate) const PAGE_FONT: f64 = 13.0;

/// The geometry of one layout, in user units.
struct Geometry {
    w: f64,
    left: f64,
    right: f64,
    grade_top: f64,
    grade_h: f64,
    /// The space above each lane for its label (0: the label is left of the lane).
    lane_label_h: f64,
    /// Grade point radius on the page.
    point_r: f64,
}

const LANE_H: f64 = 22.0;

impl Layout {
    fn geometry(self) -> Geometry {
        match self {
            Layout::Wide => Geometry {
                w: 960.0,
                left: 110.0,
                right: 20.0,
                grade_top: 56.0,
                grade_h: 200.0,
                lane_label_h: 0.0,
                point_r: 3.5,
            },
            Layout::Narrow => Geometry {
                w: 420.0,
                left: 30.0,
                right: 26.0,
                grade_top: 104.0,
                grade_h: 176.0,
                lane_label_h: 16.0,
                point_r: 5.0,
            },
        }
    }
}

impl Geometry {
    /// The top of lane `i` (its label, when above, is in the `lane_label_h` before it).
    fn lane_y(&self, lanes_top: f64, i: usize) -> f64 {
        lanes_top + self.lane_label_h + i as f64 * (LANE_H + 8.0 + self.lane_label_h)
    }
    /// The bottom of the lanes.
    fn lanes_bottom(&self, lanes_top: f64) -> f64 {
        lanes_top + 4.0 * (LANE_H + 8.0 + self.lane_label_h)
    }
    /// y of a grade 0-4 in the grade panel.
    fn y(&self, g: u8) -> f64 {
        self.grade_top + self.grade_h - f64::from(g.min(4)) / 4.0 * self.grade_h
    }
}

/// The width of `text` at `font` units, estimated generously (0.62 em a character: wider
/// than the average sans-serif glyph) so labels spaced by it do not touch.
pub(crate) fn text_width(text: &str, font: f64) -> f64 {
    text.chars().count() as f64 * 0.62 * font
}

/// Every how many days a day tick is labelled. The CLI file: 1, 5 or 10 by the course's
/// length. The page (both layouts, its labels at [`PAGE_FONT`]): the smallest of 1, 2, 5,
/// 10, 20, 50, 100… whose labels (the widest, "day N" of the last day) are at least 8 units
/// apart.
fn tick_every(mode: Mode, g: &Geometry, days: f64, last_day: i64) -> i64 {
    match mode {
        Mode::File => {
            if days > 40.0 {
                10
            } else if days > 20.0 {
                5
            } else {
                1
            }
        }
        Mode::Page { .. } => {
            let per_day = (g.w - g.left - g.right) / days.max(1.0 / 24.0);
            let need = text_width(&format!("day {}", last_day.abs().max(10)), PAGE_FONT) + 8.0;
            // 1, 2, 5, 10, 20, 50, … (a span too long for any: day 0 only).
            (0u32..)
                .map_while(|k| {
                    10i64
                        .checked_pow(k / 3)
                        .map(|p| [1, 2, 5][k as usize % 3] * p)
                })
                .find(|step| per_day * *step as f64 >= need)
                .unwrap_or(i64::MAX)
        }
    }
}

struct Scale {
    start: i64,
    end: i64,
    left: f64,
    width: f64,
}

impl Scale {
    fn new(c: &Course, g: &Geometry) -> Self {
        Scale {
            start: c.start.0,
            end: c.until.0.max(c.start.0 + 3_600_000),
            left: g.left,
            width: g.w - g.left - g.right,
        }
    }
    fn x(&self, t: Timestamp) -> f64 {
        let span = (self.end - self.start).max(1) as f64;
        self.left + (t.0 - self.start) as f64 / span * self.width
    }
}

fn state_text(s: GradeState) -> String {
    match s {
        GradeState::Graded(g) => format!("grade {g}"),
        GradeState::AtLeast(g) => format!("grade at least {g} (a domain not assessable)"),
        GradeState::NotAssessable => "not assessable".into(),
    }
}

/// The findings a point's grade rests on, in clinician words (page mode), one per line.
fn findings_text(p: &CoursePoint, syn: Syndrome, now: Timestamp) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in p.findings(syn) {
        let line = format!(
            "{} ({})",
            clinician_units(&without_rule_ids(&e.finding)),
            when(e.at, now)
        );
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// The attributes that make a mark a focusable point of the page's chart.
fn interactive_attrs(
    class: &str,
    syn: Syndrome,
    grade: &str,
    time: &str,
    day: i64,
    evidence: &[String],
    label: &str,
) -> String {
    format!(
        r#" class="{class} {}" tabindex="0" role="button" aria-label="{}" data-syndrome="{}" data-grade="{}" data-time="{}" data-day="{day}" data-evidence="{}""#,
        syn.name().to_lowercase(),
        esc(label),
        syn.name().to_lowercase(),
        esc(grade),
        esc(time),
        esc(&evidence.join("\n")).replace('\n', "&#10;")
    )
}

/// The chart as an SVG document.
pub fn course_svg(c: &Course) -> String {
    svg(c, Mode::File, Layout::Wide)
}

/// The chart as written in `mode` and `layout`. On the page both layouts are written (CSS
/// shows one, `display: none` takes the other out of the tab order and the accessibility
/// tree), so every id in the narrow one has its own suffix.
pub(crate) fn svg(c: &Course, mode: Mode, layout: Layout) -> String {
    let page = matches!(mode, Mode::Page { .. });
    let g = layout.geometry();
    let (w, left, right) = (g.w, g.left, g.right);
    let narrow = layout == Layout::Narrow;
    let suffix = if narrow { "-narrow" } else { "" };
    let hatch = format!("hatch{suffix}");
    let sc = Scale::new(c, &g);
    let lanes_top = g.grade_top + g.grade_h + if narrow { 24.0 } else { 40.0 };
    let lanes_bottom = g.lanes_bottom(lanes_top);
    let h = lanes_bottom + 40.0;
    let mut s = String::new();
    let (svg_attrs, title_attrs) = if page {
        let wide = if narrow { "narrow" } else { "wide" };
        (
            format!(
                r#" id="course-chart{suffix}" class="course-chart course-chart-{wide}" role="group" aria-labelledby="course-chart{suffix}-title" aria-describedby="episodes-caption chart-help""#
            ),
            format!(r#" id="course-chart{suffix}-title""#),
        )
    } else {
        (String::new(), String::new())
    };
    let heading = if narrow {
        format!(
            r#"<text class="chart-title" x="{left}" y="18" font-size="14" font-weight="bold">CRS and ICANS grade (ASTCT 2019)</text>
<text class="chart-title" x="{left}" y="38" font-size="14" font-weight="bold">days since CAR-T infusion</text>"#
        )
    } else {
        format!(
            r#"<text class="chart-title" x="{left}" y="18" font-size="14" font-weight="bold">CRS and ICANS grade (ASTCT 2019), days since CAR-T infusion</text>"#
        )
    };
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg"{svg_attrs} viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="11">
<title{title_attrs}>CRS and ICANS course from {} to {}</title>
<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line class="hatch-line" x1="0" y1="0" x2="0" y2="6" stroke="#767676" stroke-width="1.5"/></pattern></defs>
<rect class="decor chart-bg" width="100%" height="100%" fill="#fff"/>
{heading}
"##,
        mode.time(c.start),
        mode.time(c.until)
    );
    // Grade gridlines.
    for grade in 0..=4u8 {
        let y = g.y(grade);
        let _ = writeln!(
            s,
            r##"<line class="decor" x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{grade}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    // Day ticks.
    let days = (sc.end - sc.start) as f64 / 86_400_000.0;
    let first_day = c.day(c.start);
    let last_day = c.day(c.until);
    let every = tick_every(mode, &g, days, last_day);
    for d in first_day..=last_day {
        if d % every != 0 {
            continue;
        }
        let t = Timestamp(c.infusion.0 + d * 86_400_000);
        if t < c.start {
            continue;
        }
        let x = sc.x(t);
        let label = format!("day {d}");
        let day_class = if page { r#" class="day-label""# } else { "" };
        let half = text_width(&label, PAGE_FONT) / 2.0;
        if page && (x - half < 0.0 || x + half > w) {
            // Would be cut at the edge of the page's chart: the gridline only.
            let _ = writeln!(
                s,
                r##"<line class="decor" x1="{x}" y1="{}" x2="{x}" y2="{lanes_bottom}" stroke="#eee"/>"##,
                g.grade_top
            );
            continue;
        }
        let _ = writeln!(
            s,
            r##"<line class="decor" x1="{x}" y1="{}" x2="{x}" y2="{lanes_bottom}" stroke="#eee"/><text{day_class} x="{x}" y="{}" text-anchor="middle">{label}</text>"##,
            g.grade_top,
            lanes_bottom + 14.0
        );
    }
    // Not-assessable stretches, per syndrome, as hatched bands (never as grade 0).
    for (syn, band_y) in [(Syndrome::Crs, 0.0), (Syndrome::Icans, g.grade_h / 2.0)] {
        for n in &c.syndrome(syn).not_assessable {
            let (x0, x1) = (sc.x(n.start), sc.x(n.end));
            let title = format!(
                "{} not assessable from {} to {} ({:.1} h)",
                syn.name(),
                mode.time(n.start),
                mode.time(n.end),
                n.hours()
            );
            let attrs = match mode {
                Mode::File => String::new(),
                Mode::Page { .. } => interactive_attrs(
                    "gap-band",
                    syn,
                    "not assessable",
                    &format!(
                        "from {} to {} ({:.1} h)",
                        mode.time(n.start),
                        mode.time(n.end),
                        n.hours()
                    ),
                    c.day(n.start),
                    &[format!(
                        "no {} grade could be given from the data sent: not graded, never read as grade 0",
                        syn.name()
                    )],
                    &title,
                ),
            };
            let _ = writeln!(
                s,
                r##"<rect{attrs} x="{x0}" y="{}" width="{}" height="{}" fill="url(#{hatch})" stroke="#767676" stroke-width="1"><title>{title}</title></rect>"##,
                g.grade_top + band_y,
                (x1 - x0).max(0.5),
                g.grade_h / 2.0,
            );
        }
    }
    // Step lines: one path per assessable run (broken where not assessable).
    for (syn, dash, offset) in [
        (Syndrome::Crs, "", -1.5),
        (Syndrome::Icans, r#" stroke-dasharray="6 4""#, 1.5),
    ] {
        let mut d = String::new();
        let mut open = false;
        for (i, p) in c.series.iter().enumerate() {
            let next = c.series.get(i + 1).map_or(c.until, |n| n.at);
            match p.state(syn).floor() {
                Some(grade) => {
                    let y = g.y(grade) + offset;
                    if open {
                        let _ = write!(d, "V{y:.1} H{:.1} ", sc.x(next));
                    } else {
                        let _ = write!(d, "M{:.1},{y:.1} H{:.1} ", sc.x(p.at), sc.x(next));
                    }
                    open = true;
                }
                None => open = false,
            }
        }
        let _ = writeln!(
            s,
            r##"<path class="grade-line {}" d="{d}" fill="none" stroke="#000" stroke-width="{}"{dash}><title>{} grade</title></path>"##,
            syn.name().to_lowercase(),
            if syn == Syndrome::Crs { 2.5 } else { 2.0 },
            syn.name()
        );
        // A mark with a tooltip at every point.
        for p in &c.series {
            let st = p.state(syn);
            let Some(grade) = st.floor() else { continue };
            let filled = matches!(st, GradeState::Graded(_));
            let (attrs, evidence, r) = match mode {
                Mode::File => {
                    let ev: Vec<&str> = p.evidence(syn).iter().map(|x| x.0.as_str()).collect();
                    let ev = if ev.is_empty() {
                        "none".into()
                    } else {
                        ev.join(", ")
                    };
                    (String::new(), ev, 2.5)
                }
                Mode::Page { now } => {
                    let ev = findings_text(p, syn, now);
                    let grade = match st {
                        GradeState::AtLeast(at_least) => {
                            format!(
                                "at least {at_least} (a domain could not be assessed: the grade may be higher)"
                            )
                        }
                        _ => grade.to_string(),
                    };
                    let label = format!(
                        "{} {}{} (day {})",
                        syn.name(),
                        state_text(st),
                        mode.at(p.at),
                        c.day(p.at)
                    );
                    let class = if filled {
                        "grade-point"
                    } else {
                        "grade-point lower-bound"
                    };
                    let attrs = interactive_attrs(
                        class,
                        syn,
                        &grade,
                        &mode.time(p.at),
                        c.day(p.at),
                        &ev,
                        &label,
                    );
                    let ev = if ev.is_empty() {
                        "none".into()
                    } else {
                        ev.join("; ")
                    };
                    (attrs, ev, g.point_r)
                }
            };
            let _ = writeln!(
                s,
                r##"<circle{attrs} cx="{:.1}" cy="{:.1}" r="{r}" fill="{}" stroke="#000"><title>{} {}{} (day {}); evidence: {}</title></circle>"##,
                sc.x(p.at),
                g.y(grade) + offset,
                if filled { "#000" } else { "#fff" },
                syn.name(),
                state_text(st),
                mode.at(p.at),
                c.day(p.at),
                esc(&evidence)
            );
        }
    }
    // Legend, under the title.
    // Narrow: on two rows.
    let (lower_at, row2) = if narrow {
        ((4.0, 20.0), (120.0, 20.0))
    } else {
        ((264.0, 0.0), (370.0, 0.0))
    };
    let legend_y = if narrow { 58.0 } else { g.grade_top - 20.0 };
    let _ = writeln!(
        s,
        r##"<g class="legend" transform="translate({left},{legend_y})"><line class="legend-crs" x1="0" y1="0" x2="24" y2="0" stroke="#000" stroke-width="2.5"/><text x="30" y="4">CRS</text><line class="legend-icans" x1="80" y1="0" x2="104" y2="0" stroke="#000" stroke-width="2" stroke-dasharray="6 4"/><text x="110" y="4">ICANS</text><circle class="legend-graded" cx="184" cy="0" r="3.5" fill="#000" stroke="#000"/><text x="192" y="4">graded</text><circle class="legend-lower" cx="{}" cy="{}" r="3.5" fill="#fff" stroke="#000" stroke-width="1.5"/><text x="{}" y="{}">lower bound</text><rect x="{}" y="{}" width="16" height="12" fill="url(#{hatch})" stroke="#767676"/><text x="{}" y="{}">not assessable</text></g>"##,
        lower_at.0,
        lower_at.1,
        lower_at.0 + 8.0,
        lower_at.1 + 4.0,
        row2.0,
        row2.1 - 6.0,
        row2.0 + 22.0,
        row2.1 + 4.0,
    );
    // Lanes: tocilizumab, steroids, vasopressors, oxygen.
    // Wide: the label left of its lane; narrow: above it.
    let lane_y = |i: usize| g.lane_y(lanes_top, i);
    for (i, name) in ["tocilizumab", "corticosteroid", "vasopressor", "oxygen"]
        .iter()
        .enumerate()
    {
        let label = if narrow {
            format!(
                r#"<text class="lane-label" x="{left}" y="{}">{name}</text>"#,
                lane_y(i) - 4.0
            )
        } else {
            format!(
                r#"<text x="{}" y="{}" text-anchor="end">{name}</text>"#,
                left - 6.0,
                lane_y(i) + LANE_H / 2.0 + 4.0
            )
        };
        let _ = writeln!(
            s,
            r##"{label}<line class="decor" x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>"##,
            lane_y(i) + LANE_H,
            w - right,
            lane_y(i) + LANE_H
        );
    }
    let t = &c.treatment;
    for d in &t.tocilizumab {
        let (x, y) = (sc.x(d.at), lane_y(0));
        let _ = writeln!(
            s,
            r##"<path d="M{x:.1},{:.1} l-6,14 h12 z" fill="#000"><title>tocilizumab {}{}{}</title></path>"##,
            y + 3.0,
            d.mg.map_or("dose not stated".into(), |m| format!("{m:.0} mg")),
            mode.at(d.at),
            esc(&source(mode, &d.source.0))
        );
    }
    for d in &t.steroids.doses {
        let (x, y) = (sc.x(d.at), lane_y(1));
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#555" stroke="#000"><title>{} {}{}{}</title></rect>"##,
            x - 5.0,
            y + 6.0,
            d.drug.key(),
            d.mg.map_or("dose not stated".into(), |m| format!("{m:.1} mg")),
            mode.at(d.at),
            esc(&source(mode, &d.source.0))
        );
    }
    for d in t.anakinra.iter().chain(&t.siltuximab) {
        let (x, y) = (sc.x(d.at), lane_y(0));
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{:.1}" r="5" fill="#fff" stroke="#000" stroke-width="2"><title>{}{}{}</title></circle>"##,
            y + LANE_H / 2.0,
            d.drug.key(),
            mode.at(d.at),
            esc(&source(mode, &d.source.0))
        );
    }
    // Bars: the treatment's own intervals (vasopressor exposures, oxygen records).
    for (x0, x1, label) in bars(c, &sc, Bar::Vasopressor, mode) {
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{}" fill="#333"><title>{}</title></rect>"##,
            lane_y(2) + 4.0,
            (x1 - x0).max(1.0),
            LANE_H - 8.0,
            esc(&label)
        );
    }
    for (x0, x1, label) in bars(c, &sc, Bar::Oxygen, mode) {
        let shade = OXYGEN_CLASSES
            .iter()
            .position(|k| label.starts_with(k))
            .map_or(OXYGEN_SHADES[0], |i| OXYGEN_SHADES[i]);
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{}" fill="{shade}" stroke="#000" stroke-width="0.3"><title>{}</title></rect>"##,
            lane_y(3) + 4.0,
            (x1 - x0).max(1.0),
            LANE_H - 8.0,
            esc(&label)
        );
    }
    s.push_str("</svg>\n");
    s
}

enum Bar {
    Vasopressor,
    Oxygen,
}

/// A dose's resource reference: in the file only (the page speaks clinician, RULES.md
/// §7 S14).
fn source(mode: Mode, reference: &str) -> String {
    match mode {
        Mode::File => format!(" ({reference})"),
        Mode::Page { .. } => String::new(),
    }
}

fn bars(c: &Course, sc: &Scale, which: Bar, mode: Mode) -> Vec<(f64, f64, String)> {
    match which {
        Bar::Vasopressor => c
            .treatment
            .vasopressor_spans
            .iter()
            .map(|(a, b, label)| {
                (
                    sc.x(*a),
                    sc.x(*b),
                    format!("{label} {} to {}", mode.time(*a), mode.time(*b)),
                )
            })
            .collect(),
        Bar::Oxygen => c
            .treatment
            .oxygen_spans
            .iter()
            .map(|(a, b, class)| {
                (
                    sc.x(*a),
                    sc.x(*b),
                    format!("{class}: {} to {}", mode.time(*a), mode.time(*b)),
                )
            })
            .collect(),
    }
}
