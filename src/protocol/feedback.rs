//! CDS Hooks 2.0.1 "Feedback": what a CDS Client reports about a card.

use serde::{Deserialize, Serialize};

use super::request::RequestError;

/// A Coding (CDS Hooks "Data Types").
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Coding {
    /// The code system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The code.
    pub code: String,
    /// Display text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// An accepted suggestion.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct AcceptedSuggestion {
    /// The suggestion's uuid.
    pub id: String,
}

/// Why the user overrode a card.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OverrideReason {
    /// The reason picked from the card's `overrideReasons`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Coding>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_comment: Option<String>,
}

/// One feedback entry as received.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFeedback {
    card: Option<String>,
    outcome: Option<String>,
    #[serde(default)]
    accepted_suggestions: Option<Vec<AcceptedSuggestion>>,
    #[serde(default)]
    override_reason: Option<OverrideReason>,
    outcome_timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawFeedbackRequest {
    feedback: Option<Vec<RawFeedback>>,
}

/// The outcome of a card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// One or more suggestions accepted.
    Accepted,
    /// The card was dismissed.
    Overridden,
}

impl Outcome {
    /// The wire value.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Overridden => "overridden",
        }
    }
}

/// A validated feedback entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Feedback {
    /// The card uuid.
    pub card: String,
    /// The outcome.
    pub outcome: Outcome,
    /// Accepted suggestions (accepted outcomes).
    pub accepted_suggestions: Vec<AcceptedSuggestion>,
    /// Override reason (overridden outcomes).
    pub override_reason: Option<OverrideReason>,
    /// When the user acted, as sent (RFC 3339).
    pub outcome_timestamp: String,
}

fn invalid(field: &'static str, i: usize, message: &str) -> RequestError {
    RequestError::Invalid {
        field,
        message: format!("feedback[{i}]: {message}"),
    }
}

/// Parses and validates a feedback body.
pub fn parse_feedback(body: &[u8]) -> Result<Vec<Feedback>, RequestError> {
    let raw: RawFeedbackRequest =
        serde_json::from_slice(body).map_err(|e| RequestError::Malformed(e.to_string()))?;
    let entries = raw.feedback.ok_or(RequestError::Missing("feedback"))?;
    if entries.is_empty() {
        return Err(RequestError::Invalid {
            field: "feedback",
            message: "must not be empty".into(),
        });
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let card = f
                .card
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| invalid("card", i, "required"))?;
            let outcome = match f.outcome.as_deref() {
                Some("accepted") => Outcome::Accepted,
                Some("overridden") => Outcome::Overridden,
                Some(other) => {
                    return Err(invalid(
                        "outcome",
                        i,
                        &format!("{other:?} is not accepted|overridden"),
                    ));
                }
                None => return Err(invalid("outcome", i, "required")),
            };
            let accepted_suggestions = f.accepted_suggestions.unwrap_or_default();
            if outcome == Outcome::Accepted && accepted_suggestions.is_empty() {
                return Err(invalid(
                    "acceptedSuggestions",
                    i,
                    "required for accepted outcomes",
                ));
            }
            let ts = f
                .outcome_timestamp
                .ok_or_else(|| invalid("outcomeTimestamp", i, "required"))?;
            if chrono::DateTime::parse_from_rfc3339(&ts).is_err() {
                return Err(invalid(
                    "outcomeTimestamp",
                    i,
                    "must be an RFC 3339 date-time",
                ));
            }
            Ok(Feedback {
                card,
                outcome,
                accepted_suggestions,
                override_reason: f.override_reason,
                outcome_timestamp: ts,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_examples_are_accepted() {
        let a = parse_feedback(br#"{"feedback":[{"card":"4e0a","outcome":"accepted","acceptedSuggestions":[{"id":"e56e"}],"outcomeTimestamp":"2021-12-11T10:05:31Z"}]}"#).expect("valid");
        assert_eq!(a[0].outcome, Outcome::Accepted);
        let o = parse_feedback(br#"{"feedback":[{"card":"9368","outcome":"overridden","overrideReason":{"reason":{"code":"d7ecf885","system":"https://example.com"},"userComment":"c"},"outcomeTimestamp":"2020-12-11T00:00:00Z"}]}"#).expect("valid");
        assert_eq!(
            o[0].override_reason
                .as_ref()
                .and_then(|r| r.user_comment.as_deref()),
            Some("c")
        );
    }

    #[test]
    fn bad_feedback_is_refused() {
        assert!(parse_feedback(b"{}").is_err());
        assert!(parse_feedback(br#"{"feedback":[]}"#).is_err());
        assert!(parse_feedback(br#"{"feedback":[{"card":"x","outcome":"maybe","outcomeTimestamp":"2020-12-11T00:00:00Z"}]}"#).is_err());
        assert!(parse_feedback(br#"{"feedback":[{"card":"x","outcome":"accepted","outcomeTimestamp":"2020-12-11T00:00:00Z"}]}"#).is_err());
        assert!(parse_feedback(br#"{"feedback":[{"card":"x","outcome":"overridden","outcomeTimestamp":"yesterday"}]}"#).is_err());
    }
}
