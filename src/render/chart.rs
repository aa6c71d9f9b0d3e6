//! The course chart: days since infusion on x; CRS (solid) and ICANS (dashed) grades
//! as step lines, not-assessable stretches hatched (never drawn as 0); tocilizumab
//! (triangles) and corticosteroid (squares) doses as markers; vasopressor and oxygen
//! bars. Black, greys and line styles only, so it prints in grey scale; every mark
//! carries a `<title>` tooltip.

use std::fmt::Write;

use crate::domain::{Course, GradeState, OXYGEN_CLASSES, Syndrome, Timestamp};
use crate::protocol::format_time;

const W: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const GRADE_TOP: f64 = 40.0;
const GRADE_H: f64 = 200.0;
const LANE_H: f64 = 22.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Scale {
    start: i64,
    end: i64,
}

impl Scale {
    fn x(&self, t: Timestamp) -> f64 {
        let span = (self.end - self.start).max(1) as f64;
        LEFT + (t.0 - self.start) as f64 / span * (W - LEFT - RIGHT)
    }
    /// y of a grade 0-4 in the grade panel.
    fn y(&self, g: u8) -> f64 {
        GRADE_TOP + GRADE_H - f64::from(g.min(4)) / 4.0 * GRADE_H
    }
}

fn state_text(s: GradeState) -> String {
    match s {
        GradeState::Graded(g) => format!("grade {g}"),
        GradeState::AtLeast(g) => format!("grade at least {g} (a domain not assessable)"),
        GradeState::NotAssessable => "not assessable".into(),
    }
}

/// The chart as an SVG document.
pub fn course_svg(c: &Course) -> String {
    let sc = Scale {
        start: c.start.0,
        end: c.until.0.max(c.start.0 + 3_600_000),
    };
    let lanes_top = GRADE_TOP + GRADE_H + 40.0;
    let h = lanes_top + 4.0 * (LANE_H + 8.0) + 40.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" font-family="sans-serif" font-size="11">
<title>CRS and ICANS course from {} to {}</title>
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/></pattern></defs>
<rect width="100%" height="100%" fill="#fff"/>
<text x="{LEFT}" y="20" font-size="14" font-weight="bold">CRS and ICANS grade (ASTCT 2019), days since CAR-T infusion</text>
"##,
        format_time(c.start),
        format_time(c.until)
    );
    // Grade gridlines.
    for g in 0..=4u8 {
        let y = sc.y(g);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{g}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    // Day ticks.
    let days = (sc.end - sc.start) as f64 / 86_400_000.0;
    let every = if days > 40.0 {
        10
    } else if days > 20.0 {
        5
    } else {
        1
    };
    let first_day = c.day(c.start);
    let last_day = c.day(c.until);
    for d in first_day..=last_day {
        if d % every != 0 {
            continue;
        }
        let t = Timestamp(c.infusion.0 + d * 86_400_000);
        if t < c.start {
            continue;
        }
        let x = sc.x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{GRADE_TOP}" x2="{x}" y2="{}" stroke="#eee"/><text x="{x}" y="{}" text-anchor="middle">day {d}</text>"##,
            lanes_top + 4.0 * (LANE_H + 8.0),
            lanes_top + 4.0 * (LANE_H + 8.0) + 14.0
        );
    }
    // Not-assessable stretches, per syndrome, as hatched bands (never as grade 0).
    for (syn, band_y) in [(Syndrome::Crs, 0.0), (Syndrome::Icans, GRADE_H / 2.0)] {
        for n in &c.syndrome(syn).not_assessable {
            let (x0, x1) = (sc.x(n.start), sc.x(n.end));
            let _ = writeln!(
                s,
                r##"<rect x="{x0}" y="{}" width="{}" height="{}" fill="url(#hatch)" opacity="0.5"><title>{} not assessable from {} to {} ({:.1} h)</title></rect>"##,
                GRADE_TOP + band_y,
                (x1 - x0).max(0.5),
                GRADE_H / 2.0,
                syn.name(),
                format_time(n.start),
                format_time(n.end),
                n.hours()
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
                Some(g) => {
                    let y = sc.y(g) + offset;
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
            r##"<path d="{d}" fill="none" stroke="#000" stroke-width="{}"{dash}><title>{} grade</title></path>"##,
            if syn == Syndrome::Crs { 2.5 } else { 2.0 },
            syn.name()
        );
        // A mark with a tooltip at every point.
        for p in &c.series {
            let st = p.state(syn);
            let Some(g) = st.floor() else { continue };
            let filled = matches!(st, GradeState::Graded(_));
            let ev: Vec<&str> = p.evidence(syn).iter().map(|x| x.0.as_str()).collect();
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}" stroke="#000"><title>{} {} at {} (day {}); evidence: {}</title></circle>"##,
                sc.x(p.at),
                sc.y(g) + offset,
                if filled { "#000" } else { "#fff" },
                syn.name(),
                state_text(st),
                format_time(p.at),
                c.day(p.at),
                esc(&if ev.is_empty() {
                    "none".into()
                } else {
                    ev.join(", ")
                })
            );
        }
    }
    // Legend.
    let _ = writeln!(
        s,
        r##"<g transform="translate({},{})"><line x1="0" y1="0" x2="24" y2="0" stroke="#000" stroke-width="2.5"/><text x="28" y="4">CRS</text><line x1="70" y1="0" x2="94" y2="0" stroke="#000" stroke-width="2" stroke-dasharray="6 4"/><text x="98" y="4">ICANS</text><rect x="150" y="-6" width="16" height="12" fill="url(#hatch)"/><text x="170" y="4">not assessable</text><circle cx="260" cy="0" r="3" fill="#fff" stroke="#000"/><text x="266" y="4">lower bound</text></g>"##,
        W - RIGHT - 360.0,
        GRADE_TOP - 12.0
    );
    // Lanes: tocilizumab, steroids, vasopressors, oxygen.
    let lane_y = |i: usize| lanes_top + i as f64 * (LANE_H + 8.0);
    for (i, name) in ["tocilizumab", "corticosteroid", "vasopressor", "oxygen"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{name}</text><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>"##,
            LEFT - 6.0,
            lane_y(i) + LANE_H / 2.0 + 4.0,
            lane_y(i) + LANE_H,
            W - RIGHT,
            lane_y(i) + LANE_H
        );
    }
    let t = &c.treatment;
    for d in &t.tocilizumab {
        let (x, y) = (sc.x(d.at), lane_y(0));
        let _ = writeln!(
            s,
            r##"<path d="M{x:.1},{:.1} l-6,14 h12 z" fill="#000"><title>tocilizumab {} at {} ({})</title></path>"##,
            y + 3.0,
            d.mg.map_or("dose not stated".into(), |m| format!("{m:.0} mg")),
            format_time(d.at),
            esc(&d.source.0)
        );
    }
    for d in &t.steroids.doses {
        let (x, y) = (sc.x(d.at), lane_y(1));
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#555" stroke="#000"><title>{} {} at {} ({})</title></rect>"##,
            x - 5.0,
            y + 6.0,
            d.drug.key(),
            d.mg.map_or("dose not stated".into(), |m| format!("{m:.1} mg")),
            format_time(d.at),
            esc(&d.source.0)
        );
    }
    for d in t.anakinra.iter().chain(&t.siltuximab) {
        let (x, y) = (sc.x(d.at), lane_y(0));
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{:.1}" r="5" fill="#fff" stroke="#000" stroke-width="2"><title>{} at {} ({})</title></circle>"##,
            y + LANE_H / 2.0,
            d.drug.key(),
            format_time(d.at),
            esc(&d.source.0)
        );
    }
    // Bars: the treatment's own intervals (vasopressor exposures, oxygen records).
    for (x0, x1, label) in bars(c, Bar::Vasopressor) {
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{}" fill="#333"><title>{}</title></rect>"##,
            lane_y(2) + 4.0,
            (x1 - x0).max(1.0),
            LANE_H - 8.0,
            esc(&label)
        );
    }
    for (x0, x1, label) in bars(c, Bar::Oxygen) {
        let shade = OXYGEN_CLASSES
            .iter()
            .position(|k| label.starts_with(k))
            .map_or("#bbb", |i| ["#ddd", "#aaa", "#666", "#222"][i]);
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

fn bars(c: &Course, which: Bar) -> Vec<(f64, f64, String)> {
    let sc = Scale {
        start: c.start.0,
        end: c.until.0.max(c.start.0 + 3_600_000),
    };
    match which {
        Bar::Vasopressor => c
            .treatment
            .vasopressor_spans
            .iter()
            .map(|(a, b, label)| {
                (
                    sc.x(*a),
                    sc.x(*b),
                    format!("{label} {} to {}", format_time(*a), format_time(*b)),
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
                    format!("{class}: {} to {}", format_time(*a), format_time(*b)),
                )
            })
            .collect(),
    }
}
