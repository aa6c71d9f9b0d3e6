//! Words for clinicians (RULES.md §7 S14): clinician units, relative and absolute times,
//! doses with at most one decimal, literature citations instead of internal rule ids.

use chrono::{DateTime, Utc};

use crate::domain::Timestamp;

fn utc(t: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.millis())
}

/// When `t` was, seen from `now`: "2 h ago, 08:24 UTC"; another day adds the date
/// ("3 d ago, 2026-03-07 08:24 UTC"); a time after `now` reads "in 2 h".
pub fn when(t: Timestamp, now: Timestamp) -> String {
    let (Some(at), Some(n)) = (utc(t), utc(now)) else {
        return String::new();
    };
    let minutes = (now.millis() - t.millis()) / 60_000;
    let span = |m: i64| {
        if m < 60 {
            format!("{m} min")
        } else if m < 48 * 60 {
            format!("{} h", m / 60)
        } else {
            format!("{} d", m / (24 * 60))
        }
    };
    let relative = match minutes {
        0 => "now".to_string(),
        m if m > 0 => format!("{} ago", span(m)),
        m => format!("in {}", span(-m)),
    };
    let absolute = if at.date_naive() == n.date_naive() {
        at.format("%H:%M UTC").to_string()
    } else {
        absolute(t)
    };
    format!("{relative}, {absolute}")
}

/// An instant in full, to the minute: "2026-03-07 08:24 UTC".
pub fn absolute(t: Timestamp) -> String {
    utc(t).map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// The calendar date of an instant ("2026-03-07").
pub fn date(t: Timestamp) -> String {
    utc(t).map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string())
}

/// A dose, weight or rate with at most one decimal (the engine's own formatting).
pub use crate::domain::one_decimal;

/// UCUM unit codes as clinicians write them: `Cel` → °C, `mm[Hg]` → mmHg,
/// `[degF]` → °F, `[lb_av]` → lb.
pub fn clinician_units(s: &str) -> String {
    s.replace(" Cel", " °C")
        .replace("mm[Hg]", "mmHg")
        .replace("[degF]", "°F")
        .replace("[lb_av]", "lb")
}

/// A source tag of the rules ("ASCO", "CARTOX, SEED-000") as a citation a clinician
/// recognises ("ASCO 2021", "CARTOX 2018; expert summary"). Internal rule ids
/// ("RULES 6-U6") stay in the extension only.
pub fn cite(tags: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for tag in tags.split([',', ';']).map(str::trim) {
        let name = match tag {
            "ASTCT" => "ASTCT 2019",
            "ASCO" => "ASCO 2021",
            "CARTOX" => "CARTOX 2018",
            "PEDS" => "Mahadeo 2019",
            "LABEL" => "tocilizumab label",
            "PROJECT" => "project decision",
            t if t.starts_with("SEED") => "expert summary",
            _ => continue,
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out.join("; ")
}

/// Removes internal rule ids from a note: any parenthesised part that cites the rules
/// ("(RULES.md B.4)", "(§6-U1)").
pub fn without_rule_ids(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        out.push_str(&rest[..open]);
        if !(inner.contains("RULES") || inner.contains('§')) {
            out.push_str(&rest[open..=open + close]);
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("  ", " ").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-10T12:00:00Z.
    const NOW: Timestamp = Timestamp(1_773_144_000_000);
    const MINUTE: i64 = 60_000;

    #[test]
    fn times_read_relative_then_absolute() {
        assert_eq!(
            when(Timestamp(NOW.0 - 96 * MINUTE), NOW),
            "1 h ago, 10:24 UTC"
        );
        assert_eq!(
            when(Timestamp(NOW.0 - 5 * MINUTE), NOW),
            "5 min ago, 11:55 UTC"
        );
        assert_eq!(when(NOW, NOW), "now, 12:00 UTC");
        assert_eq!(
            when(Timestamp(NOW.0 - 14 * 60 * MINUTE), NOW),
            "14 h ago, 2026-03-09 22:00 UTC"
        );
        assert_eq!(
            when(Timestamp(NOW.0 - 3 * 24 * 60 * MINUTE), NOW),
            "3 d ago, 2026-03-07 12:00 UTC"
        );
        assert_eq!(
            when(Timestamp(NOW.0 + 150 * MINUTE), NOW),
            "in 2 h, 14:30 UTC"
        );
    }

    #[test]
    fn doses_show_at_most_one_decimal() {
        assert_eq!(one_decimal(358.799_999_999_999_95), "358.8");
        assert_eq!(one_decimal(559.987), "560");
        assert_eq!(one_decimal(800.0), "800");
        assert_eq!(one_decimal(69.998), "70");
        assert_eq!(one_decimal(0.25), "0.3");
    }

    #[test]
    fn ucum_codes_are_written_as_clinicians_write_them() {
        assert_eq!(
            clinician_units("temperature 39.2 Cel, the highest in 24 h"),
            "temperature 39.2 °C, the highest in 24 h"
        );
        assert_eq!(
            clinician_units("systolic pressure 82 mm[Hg]"),
            "systolic pressure 82 mmHg"
        );
    }

    #[test]
    fn source_tags_become_citations_and_rule_ids_disappear() {
        assert_eq!(cite("ASCO"), "ASCO 2021");
        assert_eq!(cite("SEED-000, RULES 6-U6"), "expert summary");
        assert_eq!(cite("SEED-001, CARTOX"), "expert summary; CARTOX 2018");
        assert_eq!(cite("ASCO, SEED-000"), "ASCO 2021; expert summary");
        assert_eq!(
            without_rule_ids("CRP falls after IL-6 blockade (RULES.md B.4)"),
            "CRP falls after IL-6 blockade"
        );
        assert_eq!(
            without_rule_ids("graded 0 by policy (§6-U1) for now (see card)"),
            "graded 0 by policy for now (see card)"
        );
    }
}
