//! FHIR `date`, `dateTime` and `instant` text → [`Timestamp`].

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::domain::Timestamp;

/// Parses a FHIR date or dateTime. Partial dates (`2026`, `2026-11`, `2026-11-23`) mean
/// the start of that year, month or day in UTC; a time carries its offset, which is
/// honoured (FHIR-INPUTS.md: "compare them as instants").
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    let s = text.trim();
    let date = match s.len() {
        4 => NaiveDate::from_ymd_opt(s.parse().ok()?, 1, 1),
        7 => NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok(),
        10 => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
        _ => None,
    };
    if let Some(d) = date {
        return Some(Timestamp(
            d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
        ));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(Timestamp(t.timestamp_millis()));
    }
    // FHIR requires an offset with a time; a missing one is read as UTC rather than
    // dropping the fact.
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(Timestamp(naive.and_utc().timestamp_millis()))
}

/// Age in fractional years at `now`: whole calendar years since the birthday, plus the
/// elapsed fraction (in days) of the current year of life. A child whose sixth birthday
/// is today (UTC) is exactly 6.0 all day.
pub(crate) fn age_years(birth_date: &str, now: Timestamp) -> Option<f64> {
    let born = parse_time(birth_date)?;
    let born = Utc.timestamp_millis_opt(born.0).single()?.date_naive();
    let now_dt = Utc.timestamp_millis_opt(now.0).single()?;
    let today = now_dt.date_naive();
    if today < born {
        return None;
    }
    let mut years = today.year() - born.year();
    let birthday_in = |y: i32| {
        born.with_year(y)
            .or_else(|| NaiveDate::from_ymd_opt(y, 3, 1)) // 29 Feb → 1 Mar
    };
    let mut last = birthday_in(born.year() + years)?;
    if last > today {
        years -= 1;
        last = birthday_in(born.year() + years)?;
    }
    let next = birthday_in(born.year() + years + 1)?;
    // `birthDate` has day precision, so the age is counted in whole days: it does not
    // creep up through the day of a birthday.
    let fraction = (today - last).num_days() as f64 / (next - last).num_days() as f64;
    Some(f64::from(years) + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_honoured_and_partial_dates_accepted() {
        let utc = parse_time("2026-11-20T10:00:00Z");
        assert_eq!(parse_time("2026-11-20T12:00:00+02:00"), utc);
        assert_eq!(parse_time("2026-11-20T10:00:00.000Z"), utc);
        assert!(parse_time("2026").is_some());
        assert!(parse_time("2026-11").is_some());
        assert!(parse_time("2026-11-20").is_some());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn a_sixth_birthday_today_is_exactly_six_years() {
        let now = parse_time("2026-11-23T15:00:00Z").unwrap_or(Timestamp(0));
        assert_eq!(age_years("2020-11-23", now), Some(6.0));
        assert!(age_years("2020-11-24", now).is_some_and(|a| a < 6.0 && a > 5.99));
    }
}
