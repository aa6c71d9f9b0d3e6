//! Instants and durations without a clock: the caller supplies "now".

use std::fmt;

/// An instant, as milliseconds since the Unix epoch (UTC). FHIR times carry offsets;
/// the adapter turns them into instants so the engine compares them correctly
/// (FHIR-INPUTS.md, "General rules").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// A span of time in hours (fractional).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Hours(pub f64);

pub(crate) const MS_PER_HOUR: i64 = 3_600_000;

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This instant moved back by `hours`.
    pub fn minus_hours(self, hours: f64) -> Timestamp {
        Timestamp(self.0 - (hours * MS_PER_HOUR as f64).round() as i64)
    }

    /// This instant moved forward by `hours`.
    pub fn plus_hours(self, hours: f64) -> Timestamp {
        Timestamp(self.0 + (hours * MS_PER_HOUR as f64).round() as i64)
    }

    /// Hours from `earlier` to `self` (negative when `earlier` is later).
    pub fn hours_since(self, earlier: Timestamp) -> Hours {
        Hours((self.0 - earlier.0) as f64 / MS_PER_HOUR as f64)
    }

    /// Whole days from `earlier` to `self`, rounded down.
    pub fn days_since(self, earlier: Timestamp) -> i64 {
        (self.0 - earlier.0).div_euclid(24 * MS_PER_HOUR)
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 48.0 {
            write!(f, "{:.0} days", self.0 / 24.0)
        } else {
            write!(f, "{:.0} h", self.0)
        }
    }
}

/// The grading window: facts observed in `(start, end]` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Exclusive start.
    pub start: Timestamp,
    /// Inclusive end: the evaluation instant.
    pub end: Timestamp,
}

impl Window {
    /// The `hours` before `now`.
    pub fn ending_at(now: Timestamp, hours: f64) -> Window {
        Window {
            start: now.minus_hours(hours),
            end: now,
        }
    }

    /// Whether an instant falls in the window. Facts after the evaluation instant
    /// are not yet known when replaying with a pinned clock.
    pub fn contains(self, at: Timestamp) -> bool {
        at > self.start && at <= self.end
    }

    /// Whether a period `[start, end]` (open when `end` is `None`) overlaps the window.
    pub fn overlaps(self, start: Timestamp, end: Option<Timestamp>) -> bool {
        start <= self.end && end.is_none_or(|e| e > self.start)
    }
}
