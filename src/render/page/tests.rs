//! The app page: what it says, what it never says, and the contrast of its colours
//! (WCAG 2.1: relative luminance and contrast ratio as defined in the WCAG 2.1 glossary).

use super::*;
use crate::domain::testkit::*;
use crate::domain::{CourseParams, Drug, OxygenDevice, Policy, course};
use crate::render::chart;

/// A course with every kind of mark: CRS not assessable before the first data, graded 2
/// (fever 39.0 °C, SBP 85 mmHg without vasopressor), later a lower bound (fever, no
/// pressure or oxygen record in the window), tocilizumab and dexamethasone given.
fn rich_course() -> Course {
    let mut p = adult();
    temp(&mut p, 39.0, 40.0);
    sbp(&mut p, 85.0, 40.0);
    device(&mut p, OxygenDevice::RoomAir, 40.0);
    ice(&mut p, 10, 40.0);
    given(&mut p, Drug::Tocilizumab, 30.0, Some(560.0));
    given(&mut p, Drug::Dexamethasone, 20.0, Some(10.0));
    temp(&mut p, 38.5, 10.0);
    let infused = p.infusion.as_ref().expect("infused").at;
    course(
        &p,
        infused,
        NOW,
        &Policy::default(),
        &CourseParams::default(),
    )
}

fn page_of(c: Option<&Course>, label: &str, issues: &[String]) -> String {
    course_page(&PageInput {
        course: c,
        patient_label: label,
        data_issues: issues,
        now: NOW,
    })
}

/// The opening tags of `html` whose attributes contain `needle`.
fn tags_with<'a>(html: &'a str, needle: &str) -> Vec<&'a str> {
    html.split('<')
        .filter_map(|t| t.split('>').next())
        .filter(|t| t.contains(needle))
        .collect()
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    tag[start..].split('"').next()
}

#[test]
fn without_an_infusion_the_page_says_so_and_draws_no_chart() {
    let html = page_of(None, "Jane Doe, born 1970-01-01", &[]);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("No CAR-T infusion on record"));
    assert!(html.contains("not a finding of no CRS or ICANS"));
    assert!(
        !html.contains("<svg"),
        "no chart that could read as no toxicity"
    );
    assert!(!html.contains("grade-point"));
    assert!(!html.contains("episode-row"));
    assert!(!html.contains("grade 0"));
    assert!(!html.contains("now-crs"), "no current-grade tile");
}

#[test]
fn every_grade_point_of_the_course_is_a_focusable_mark_with_its_data() {
    let c = rich_course();
    let html = page_of(Some(&c), "", &[]);
    let expected: usize = [Syndrome::Crs, Syndrome::Icans]
        .iter()
        .map(|s| {
            c.series
                .iter()
                .filter(|p| p.state(*s).floor().is_some())
                .count()
        })
        .sum();
    // Two drawings of the chart (wide and narrow, CSS shows one): each has every point.
    let points = tags_with(&html, "class=\"grade-point");
    assert!(expected > 10, "the course has graded points ({expected})");
    assert_eq!(points.len(), 2 * expected);
    for chart in [
        svg(&c, Mode::Page { now: NOW }, Layout::Wide),
        svg(&c, Mode::Page { now: NOW }, Layout::Narrow),
    ] {
        assert!(html.contains(&chart), "the page inlines both charts");
        assert_eq!(tags_with(&chart, "class=\"grade-point").len(), expected);
        // Without the script, every point still has its tooltip.
        assert_eq!(
            chart
                .split("<circle")
                .filter(|c| c.contains("grade-point") && c.contains("</title></circle>"))
                .count(),
            expected
        );
    }
    for p in &points {
        assert_eq!(attr(p, "tabindex"), Some("0"), "{p}");
        assert_eq!(attr(p, "role"), Some("button"), "{p}");
        assert!(
            matches!(attr(p, "data-syndrome"), Some("crs" | "icans")),
            "{p}"
        );
        assert!(attr(p, "data-grade").is_some_and(|g| !g.is_empty()), "{p}");
        assert!(
            attr(p, "data-time").is_some_and(|t| t.contains("UTC")),
            "{p}"
        );
        assert!(attr(p, "aria-label").is_some(), "{p}");
    }
    // The chart is named and described by the episodes table (its text alternative).
    for id in ["course-chart", "course-chart-narrow"] {
        let svg = tags_with(&html, &format!("id=\"{id}\""));
        assert_eq!(svg.len(), 1, "{id}");
        assert!(
            attr(svg[0], "aria-describedby").is_some_and(|d| d.contains("episodes-caption")),
            "{id}"
        );
        assert_eq!(
            attr(svg[0], "aria-labelledby"),
            Some(format!("{id}-title").as_str())
        );
    }
    assert!(html.contains("<caption id=\"episodes-caption\">"));
    let rows = tags_with(&html, "class=\"episode-row\"").len();
    assert_eq!(rows, c.crs.episodes.len() + c.icans.episodes.len());
    assert!(rows >= 1);
}

#[test]
fn a_not_assessable_stretch_is_a_hatched_band_and_a_listed_gap_never_a_grade_0_point() {
    let c = rich_course();
    let gap = *c
        .crs
        .not_assessable
        .first()
        .expect("CRS not assessable before the first data");
    let html = page_of(Some(&c), "", &[]);
    // In each drawing (wide and narrow), hatched with that drawing's own pattern.
    for (layout, hatch) in [
        (Layout::Wide, "url(#hatch)"),
        (Layout::Narrow, "url(#hatch-narrow)"),
    ] {
        let chart = svg(&c, Mode::Page { now: NOW }, layout);
        assert!(html.contains(&chart));
        let bands = tags_with(&chart, "class=\"gap-band crs\"");
        assert_eq!(bands.len(), c.crs.not_assessable.len());
        assert!(bands.iter().all(|b| attr(b, "tabindex") == Some("0")));
        assert!(bands.iter().all(|b| attr(b, "fill") == Some(hatch)));
    }
    // No CRS point is drawn inside the stretch.
    let inside = c
        .series
        .iter()
        .filter(|p| p.at >= gap.start && p.at < gap.end)
        .filter(|p| p.crs.floor().is_some())
        .count();
    assert_eq!(inside, 0);
    assert!(html.contains(&escape_html(&format!(
        "CRS not assessable from {} to {}",
        when(gap.start, NOW),
        when(gap.end, NOW)
    ))));
    let table_na = format!("{} h", one_decimal(c.crs.not_assessable_hours()));
    assert!(html.contains(&format!("<td class=\"state-na\">{table_na}</td>")));
}

#[test]
fn a_lower_bound_grade_is_written_as_at_least_and_never_as_an_exact_grade() {
    let c = rich_course();
    let lower = c
        .series
        .iter()
        .find(|p| matches!(p.crs, GradeState::AtLeast(_)))
        .expect("the course has a CRS lower bound");
    let GradeState::AtLeast(g) = lower.crs else {
        unreachable!("matched above")
    };
    let html = page_of(Some(&c), "", &[]);
    let marks = tags_with(&html, "grade-point lower-bound crs");
    let n = c
        .series
        .iter()
        .filter(|p| matches!(p.crs, GradeState::AtLeast(_)))
        .count();
    assert_eq!(marks.len(), 2 * n, "in the wide and the narrow chart");
    for m in &marks {
        let grade = attr(m, "data-grade").expect("a grade");
        assert!(grade.starts_with("at least "), "{grade}");
        assert_eq!(attr(m, "fill"), Some("#fff"), "hollow");
    }
    assert!(
        marks.iter().any(
            |m| attr(m, "data-grade").is_some_and(|d| d.starts_with(&format!("at least {g} ")))
        )
    );
    assert!(html.contains("only a lower bound for"));
}

#[test]
fn the_page_speaks_clinician_without_resource_ids_or_rfc_3339_times() {
    let c = rich_course();
    let html = page_of(Some(&c), "", &[]);
    for id in [
        "Observation/",
        "MedicationAdministration/",
        "Procedure/",
        "RULES",
    ] {
        assert!(!html.contains(id), "{id} on the page");
    }
    assert!(!html.contains(":00Z"), "RFC 3339 times on the page");
    // Evidence in words with clinician units and relative and absolute times.
    assert!(
        html.contains("39 °C") || html.contains("39.0 °C"),
        "temperature in °C"
    );
    assert!(html.contains("mmHg"));
    assert!(html.contains(" h ago, "));
    assert_eq!(absolute(NOW), "2025-11-20 12:00 UTC");
    assert!(html.contains(&format!("As of</dt><dd id=\"as-of\">{}", absolute(NOW))));
    assert!(html.contains(&format!("day {} after CAR-T infusion", c.day(NOW))));
    // The treatment counts and limits.
    assert!(html.contains("1 dose; most in any 24 h: 1 (limit 3)"));
    assert!(
        html.contains("tocilizumab 560 mg, 1 d ago")
            || html.contains("tocilizumab 560 mg, 30 h ago")
    );
    assert!(html.contains("dexamethasone equivalent 10 mg"));
}

#[test]
fn the_patient_label_evidence_and_issues_are_html_escaped() {
    let c = rich_course();
    let hostile = "<script>alert(1)</script>\"'&";
    let issues = vec![format!("Observation {hostile} could not be read")];
    let html = page_of(Some(&c), hostile, &issues);
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
    let none = page_of(None, hostile, &issues);
    assert!(!none.contains("<script>alert"));
    assert!(none.contains("could not be read"));
}

#[test]
fn data_issues_are_listed_as_gaps_and_an_empty_label_is_said_so() {
    let c = rich_course();
    let issues = vec!["one temperature in an unknown unit: not used".to_string()];
    let html = page_of(Some(&c), "", &issues);
    assert!(html.contains(
        "<li class=\"gap data-issue\">one temperature in an unknown unit: not used</li>"
    ));
    assert!(html.contains("name not available"));
}

#[test]
fn the_page_loads_only_its_own_css_and_script_and_has_no_inline_code_or_style() {
    for html in [
        page_of(Some(&rich_course()), "", &[]),
        page_of(None, "", &[]),
    ] {
        assert!(!html.contains(" style="), "no style attribute");
        assert!(!html.contains("<style"), "no style element");
        for tag in html.split('<').filter_map(|t| t.split('>').next()) {
            assert!(
                !tag.split_whitespace()
                    .skip(1)
                    .any(|a| a.starts_with("on") && a.contains('=')),
                "no inline event handler: {tag}"
            );
        }
        assert!(!html.contains("javascript:"));
        let scripts = tags_with(&html, "script");
        let opening: Vec<&&str> = scripts.iter().filter(|t| t.starts_with("script")).collect();
        assert_eq!(opening.len(), 1);
        assert_eq!(attr(opening[0], "src"), Some(JS_PATH));
        for t in tags_with(&html, "href=")
            .iter()
            .chain(&tags_with(&html, "src="))
        {
            let url = attr(t, "href")
                .or_else(|| attr(t, "src"))
                .unwrap_or_default();
            let in_page = url.starts_with('#') && html.contains(&format!("id=\"{}\"", &url[1..]));
            assert!(url == CSS_PATH || url == JS_PATH || in_page, "{url}");
        }
        for (i, _) in html.match_indices("url(") {
            assert!(
                html[i..].starts_with("url(#hatch)") || html[i..].starts_with("url(#hatch-narrow)"),
                "only the inline patterns"
            );
        }
    }
}

#[test]
fn without_episodes_the_table_says_no_episode_but_not_proof_of_none_when_data_is_missing() {
    // Afebrile from the start of the data, which begins 40 h before now (72 h after
    // infusion): no episode, CRS not assessable before the data.
    let mut p = adult();
    for h in [40.0, 30.0, 20.0, 10.0, 2.0] {
        temp(&mut p, 36.8, h);
        sbp(&mut p, 120.0, h);
        device(&mut p, OxygenDevice::RoomAir, h);
        ice(&mut p, 10, h);
    }
    let infused = p.infusion.as_ref().expect("infused").at;
    let c = course(
        &p,
        infused,
        NOW,
        &Policy::default(),
        &CourseParams::default(),
    );
    assert!(c.crs.episodes.is_empty() && c.icans.episodes.is_empty());
    assert!(c.crs.not_assessable_hours() > 0.0);
    let html = page_of(Some(&c), "", &[]);
    assert_eq!(tags_with(&html, "class=\"episode-row\"").len(), 0);
    assert!(html.contains("No CRS or ICANS episode in the data"));
    assert!(html.contains("not proof of no toxicity"));
}

// --- Contrast (WCAG 2.1) -------------------------------------------------------------

/// An sRGB colour from `#rgb` or `#rrggbb`.
fn hex(s: &str) -> Option<[f64; 3]> {
    let h = s.trim().strip_prefix('#')?;
    let digits: Vec<u8> = match h.len() {
        3 => h
            .chars()
            .map(|c| u8::from_str_radix(&format!("{c}{c}"), 16).ok())
            .collect::<Option<_>>()?,
        6 => (0..3)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<_>>()?,
        _ => return None,
    };
    Some([
        f64::from(digits[0]),
        f64::from(digits[1]),
        f64::from(digits[2]),
    ])
}

/// WCAG 2.1 relative luminance: L = 0.2126 R + 0.7152 G + 0.0722 B of the linearised
/// channels (c/12.92 up to 0.03928, else ((c + 0.055)/1.055)^2.4).
fn luminance(rgb: [f64; 3]) -> f64 {
    let lin = |v: f64| {
        let c = v / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
}

/// WCAG 2.1 contrast ratio (L1 + 0.05) / (L2 + 0.05), L1 the lighter.
fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// A colour painted with `opacity` over `bg` (sRGB compositing, as browsers do).
fn over(c: [f64; 3], opacity: f64, bg: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| opacity * c[i] + (1.0 - opacity) * bg[i])
}

#[test]
fn the_contrast_formula_gives_the_wcag_reference_values() {
    let white = hex("#fff").expect("colour");
    let black = hex("#000000").expect("colour");
    assert!((contrast(white, black) - 21.0).abs() < 1e-9);
    assert!((contrast(white, white) - 1.0).abs() < 1e-9);
    // #767676 is the lightest grey with 4.5:1 on white; #777777 falls just short.
    assert!(contrast(hex("#767676").expect("colour"), white) >= 4.5);
    assert!(contrast(hex("#777777").expect("colour"), white) < 4.5);
    // #949494 passes 3:1 on white, #959595 does not.
    assert!(contrast(hex("#949494").expect("colour"), white) >= 3.0);
    assert!(contrast(hex("#959595").expect("colour"), white) < 3.0);
}

/// The `--name: value` custom properties of the stylesheet's `:root` rule, and the rest
/// of the stylesheet without comments.
fn css_palette(css: &str) -> (Vec<(String, String)>, String) {
    let mut plain = String::new();
    let mut rest = css;
    while let Some(i) = rest.find("/*") {
        plain.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    plain.push_str(rest);
    let start = plain.find(":root").expect(":root rule");
    let open = start + plain[start..].find('{').expect("{");
    let close = open + plain[open..].find('}').expect("}");
    let vars = plain[open + 1..close]
        .split(';')
        .filter_map(|d| d.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| k.starts_with("--"))
        .collect();
    let outside = format!("{}{}", &plain[..start], &plain[close + 1..]);
    (vars, outside)
}

/// Every pair of the palette that fails its WCAG minimum.
fn css_failures(css: &str) -> Vec<String> {
    let (vars, outside) = css_palette(css);
    let mut failures = Vec::new();
    let group = |prefix: &str| -> Vec<(&str, [f64; 3])> {
        vars.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| {
                (
                    k.as_str(),
                    hex(v).unwrap_or_else(|| panic!("{k}: {v} is not a hex colour")),
                )
            })
            .collect()
    };
    let checks = [
        ("--text-", "--surface-", 4.5),
        ("--inverse-text-", "--inverse-surface-", 4.5),
        ("--mark-", "--surface-", 3.0),
    ];
    for (fg, bg, min) in checks {
        assert!(
            !group(fg).is_empty() && !group(bg).is_empty(),
            "{fg} and {bg} defined"
        );
        for (f, fc) in group(fg) {
            for (b, bc) in group(bg) {
                let r = contrast(fc, bc);
                if r < min {
                    failures.push(format!("{f} on {b}: {r:.2} < {min}"));
                }
            }
        }
    }
    for (k, _) in &vars {
        let known = [
            "--text-",
            "--surface-",
            "--inverse-text-",
            "--inverse-surface-",
            "--mark-",
            "--rule-",
        ];
        if !known.iter().any(|p| k.starts_with(p)) {
            failures.push(format!("{k}: not a known colour role"));
        }
    }
    // No colour outside the palette: no literal, and every var() is defined.
    let lower = outside.to_lowercase();
    for bad in ["#", "rgb(", "rgba(", "hsl(", "hsla(", "color-mix("] {
        if lower.contains(bad) {
            failures.push(format!("a colour literal ({bad}) outside :root"));
        }
    }
    let named = [
        "white", "black", "red", "green", "blue", "gray", "grey", "orange", "yellow", "purple",
        "navy", "silver", "maroon",
    ];
    for decl in lower.split([';', '{', '}']) {
        let Some((_, value)) = decl.split_once(':') else {
            continue;
        };
        for tok in value.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if named.contains(&tok) {
                failures.push(format!("named colour {tok} outside :root"));
            }
        }
    }
    for (i, _) in outside.match_indices("var(") {
        let name: String = outside[i + 4..]
            .chars()
            .take_while(|c| *c != ')' && *c != ',')
            .collect();
        if !vars.iter().any(|(k, _)| *k == name.trim()) {
            failures.push(format!("{name} used but not defined"));
        }
    }
    failures
}

#[test]
fn every_colour_of_the_stylesheet_meets_its_wcag_contrast_minimum() {
    let failures = css_failures(APP_CSS);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_low_contrast_colour_in_the_stylesheet_fails_the_check() {
    let grey_text = APP_CSS.replacen("--text-muted: #4a5663", "--text-muted: #9aa5b1", 1);
    assert_ne!(
        grey_text, APP_CSS,
        "the muted text colour is in the palette"
    );
    assert!(
        css_failures(&grey_text)
            .iter()
            .any(|f| f.starts_with("--text-muted on"))
    );
    let pale_mark = APP_CSS.replacen("--mark-icans: #a8440f", "--mark-icans: #f5b78a", 1);
    assert_ne!(pale_mark, APP_CSS);
    assert!(
        css_failures(&pale_mark)
            .iter()
            .any(|f| f.starts_with("--mark-icans on"))
    );
    let literal = format!("{APP_CSS}\n.x {{ color: #eee; }}\n");
    assert!(!css_failures(&literal).is_empty());
}

/// Every mark of an SVG whose paints all fail 3:1 against the chart background (text:
/// 4.5:1). A mark counts when any of its fill or stroke (at least 1 unit wide) reaches the
/// minimum; `opacity` is composited over the background; `class="decor"` is excluded.
fn svg_failures(svg: &str) -> Vec<String> {
    let bg_tag = tags_with(svg, "chart-bg");
    let bg = hex(bg_tag
        .first()
        .and_then(|t| attr(t, "fill"))
        .expect("a chart background"))
    .expect("hex background");
    let mut failures = Vec::new();
    for tag in svg.split('<').skip(1).filter_map(|t| t.split('>').next()) {
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if name.is_empty() || attr(tag, "class").is_some_and(|c| c.split(' ').any(|w| w == "decor"))
        {
            continue;
        }
        let opacity: f64 = attr(tag, "opacity")
            .and_then(|o| o.parse().ok())
            .unwrap_or(1.0);
        let paint = |c: [f64; 3]| contrast(over(c, opacity, bg), bg);
        match name.as_str() {
            "text" => {
                let fill = attr(tag, "fill").map_or(Some([0.0; 3]), hex);
                if let Some(c) = fill
                    && paint(c) < 4.5
                {
                    failures.push(format!("text {tag}"));
                }
            }
            "line" | "path" | "rect" | "circle" | "polygon" | "polyline" | "ellipse" => {
                let mut paints = Vec::new();
                if let Some(c) = attr(tag, "fill").and_then(hex) {
                    paints.push(paint(c));
                }
                let width: f64 = attr(tag, "stroke-width")
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(1.0);
                if let Some(c) = attr(tag, "stroke").and_then(hex)
                    && width >= 1.0
                {
                    paints.push(paint(c));
                }
                if !paints.is_empty() && paints.iter().all(|r| *r < 3.0) {
                    failures.push(format!("{name} {tag}"));
                }
            }
            _ => {}
        }
    }
    failures
}

#[test]
fn every_mark_of_the_chart_meets_3_to_1_against_its_background() {
    let c = rich_course();
    let page_svg = svg(&c, Mode::Page { now: NOW }, Layout::Wide);
    let narrow_svg = svg(&c, Mode::Page { now: NOW }, Layout::Narrow);
    let file_svg = crate::render::course_svg(&c);
    for s in [&page_svg, &narrow_svg, &file_svg] {
        assert!(s.contains("<circle"), "the chart has points");
        let failures = svg_failures(s);
        assert!(failures.is_empty(), "{failures:#?}");
    }
    // The oxygen shades are marks too.
    let white = hex("#fff").expect("colour");
    for shade in crate::render::chart::OXYGEN_SHADES {
        assert!(
            contrast(hex(shade).expect("colour"), white) >= 3.0,
            "{shade}"
        );
    }
}

#[test]
fn a_low_contrast_mark_in_the_chart_fails_the_check() {
    let svg = r##"<svg><rect class="decor chart-bg" fill="#fff"/><line class="decor" stroke="#eee"/><circle fill="#ddd" stroke="#eee"/><rect fill="url(#hatch)" stroke="#888" opacity="0.5"/><text fill="#999">x</text></svg>"##;
    let failures = svg_failures(svg);
    assert_eq!(failures.len(), 3, "{failures:#?}");
}

/// The day labels of the narrow chart: (x, text).
fn day_labels(svg: &str) -> Vec<(f64, String)> {
    svg.split("<text class=\"day-label\"")
        .skip(1)
        .map(|t| {
            let x = attr(t, "x").and_then(|x| x.parse().ok()).expect("an x");
            let text = t.split('>').nth(1).and_then(|t| t.split('<').next());
            (x, text.expect("a label").to_string())
        })
        .collect()
}

/// `c` stretched to end `days` after its start (the chart's x axis).
fn lasting(c: &Course, days: i64) -> Course {
    let mut c = c.clone();
    c.until = Timestamp(c.start.0 + days * 86_400_000);
    c
}

#[test]
fn the_narrow_chart_labels_days_without_touching_and_inside_its_420_units_from_2_to_400_days() {
    let base = rich_course();
    let own = base.day(base.until) - base.day(base.start);
    for days in [own.max(1), 3, 7, 12, 20, 30, 60, 100, 400] {
        let c = lasting(&base, days.max(own.max(1)));
        let chart = svg(&c, Mode::Page { now: NOW }, Layout::Narrow);
        assert!(chart.contains("viewBox=\"0 0 420 "), "420 units wide");
        let labels = day_labels(&chart);
        assert!(labels.len() >= 2, "{days} days: labels {labels:?}");
        for (x, text) in &labels {
            let half = chart::text_width(text, chart::PAGE_FONT) / 2.0;
            assert!(
                *x - half >= 0.0 && *x + half <= 420.0,
                "{days} days: {text} at {x}"
            );
        }
        for pair in labels.windows(2) {
            let ((xa, a), (xb, b)) = (&pair[0], &pair[1]);
            let room = (chart::text_width(a, chart::PAGE_FONT)
                + chart::text_width(b, chart::PAGE_FONT))
                / 2.0;
            assert!(
                xb - xa >= room,
                "{days} days: {a} at {xa} touches {b} at {xb}"
            );
        }
    }
}

#[test]
fn the_narrow_chart_keeps_every_day_label_of_a_short_course() {
    // Three days fit a label each (about 120 units a day): none is dropped.
    let base = rich_course();
    let c = lasting(&base, 3);
    let labels = day_labels(&svg(&c, Mode::Page { now: NOW }, Layout::Narrow));
    let first = c.day(c.start);
    let expected: Vec<String> = (first..=c.day(c.until))
        .filter(|d| Timestamp(c.infusion.0 + d * 86_400_000) >= c.start)
        .map(|d| format!("day {d}"))
        .collect();
    let got: Vec<String> = labels.into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, expected);
}

#[test]
fn the_narrow_chart_writes_lane_labels_above_their_lanes_within_the_chart() {
    let chart = svg(&rich_course(), Mode::Page { now: NOW }, Layout::Narrow);
    let lanes = tags_with(&chart, "class=\"lane-label\"");
    assert_eq!(
        lanes.len(),
        4,
        "tocilizumab, corticosteroid, vasopressor, oxygen"
    );
    for (tag, name) in lanes
        .iter()
        .zip(["tocilizumab", "corticosteroid", "vasopressor", "oxygen"])
    {
        let x: f64 = attr(tag, "x").and_then(|x| x.parse().ok()).expect("x");
        assert!(attr(tag, "text-anchor").is_none(), "starts at x: {tag}");
        assert!(x >= 0.0 && x + chart::text_width(name, chart::PAGE_FONT) <= 420.0);
    }
    // Each label is above its lane's line and below the previous lane's.
    let ys: Vec<f64> = lanes
        .iter()
        .map(|t| attr(t, "y").and_then(|y| y.parse().ok()).expect("y"))
        .collect();
    assert!(ys.windows(2).all(|w| w[1] - w[0] >= 30.0), "{ys:?}");
}

#[test]
fn the_page_has_no_duplicate_id_although_it_draws_the_chart_twice() {
    let html = page_of(Some(&rich_course()), "", &[]);
    let mut ids: Vec<&str> = html
        .split('<')
        .filter_map(|t| t.split('>').next())
        .filter_map(|t| attr(t, "id"))
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate ids");
    assert!(ids.contains(&"hatch") && ids.contains(&"hatch-narrow"));
}
