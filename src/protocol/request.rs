//! The CDS Service request (CDS Hooks 2.0.1 "Calling a CDS Service") and its validation.
//!
//! Kept flat on purpose: serde_json's `arbitrary_precision` (on program-wide) breaks
//! numbers inside untagged, flattened and internally tagged enums. Prefetch values and
//! `draftOrders` stay raw JSON text for the adapter.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::discovery::Hook;

/// Why a request was refused (all 400s).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// The body is not JSON or not the expected shape.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A field is present with a wrong value.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A required field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
}

/// The bearer token the CDS Client grants (`fhirAuthorization`).
#[derive(Deserialize)]
pub struct FhirAuthorization {
    /// The OAuth 2.0 access token; never logged.
    pub access_token: SecretString,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
    /// Granted scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// The CDS Service's client id.
    #[serde(default)]
    pub subject: Option<String>,
}

impl std::fmt::Debug for FhirAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirAuthorization")
            .field("access_token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The hook context fields this service reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// The patient in context.
    #[serde(default)]
    pub patient_id: Option<String>,
    /// The user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The encounter.
    #[serde(default)]
    pub encounter_id: Option<String>,
    /// order-select: the ids of the orders being selected.
    #[serde(default)]
    pub selections: Option<Vec<String>>,
    /// order-select / order-sign: a Bundle of draft orders.
    #[serde(default)]
    pub draft_orders: Option<Box<RawValue>>,
}

/// A CDS Service request as received.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CdsRequest {
    /// The hook that fired.
    pub hook: Option<String>,
    /// This call's UUID.
    pub hook_instance: Option<String>,
    /// The CDS Client's FHIR base URL.
    #[serde(default)]
    pub fhir_server: Option<String>,
    /// The token for `fhir_server`.
    #[serde(default)]
    pub fhir_authorization: Option<FhirAuthorization>,
    /// The hook context.
    pub context: Option<Context>,
    /// Prefetched data by key; a `null` value means "no data".
    #[serde(default)]
    pub prefetch: Option<BTreeMap<String, Box<RawValue>>>,
}

/// One prefetch key's state.
#[derive(Debug)]
pub enum Prefetched<'a> {
    /// Data (a resource or a Bundle), as JSON text.
    Data(&'a str),
    /// `null`: the client has no data for this key.
    Null,
    /// Absent, or an OperationOutcome: the client could not prefetch it.
    Missing,
}

/// A request that passed validation.
#[derive(Debug)]
pub struct ValidRequest {
    /// The hook.
    pub hook: Hook,
    /// The hookInstance.
    pub hook_instance: String,
    /// The patient id (a FHIR id).
    pub patient_id: String,
    /// The rest of the request.
    pub raw: CdsRequest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceType {
    #[serde(default)]
    resource_type: Option<String>,
    /// An OperationOutcome's issues (only their severity is read).
    #[serde(default)]
    issue: Vec<OutcomeIssue>,
}

#[derive(Deserialize)]
struct OutcomeIssue {
    #[serde(default)]
    severity: Option<String>,
}

/// Whether `id` is a FHIR id (`[A-Za-z0-9\-\.]{1,64}`), safe to put in a URL.
pub fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

impl CdsRequest {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<CdsRequest, RequestError> {
        serde_json::from_slice(body).map_err(|e| RequestError::Malformed(e.to_string()))
    }

    /// Checks the required fields for `expected` hook.
    pub fn validate(self, expected: Hook) -> Result<ValidRequest, RequestError> {
        let hook = self.hook.as_deref().ok_or(RequestError::Missing("hook"))?;
        if hook != expected.name() {
            return Err(RequestError::Invalid {
                field: "hook",
                message: format!("this service answers {:?}, not {hook:?}", expected.name()),
            });
        }
        let hook_instance = self
            .hook_instance
            .clone()
            .ok_or(RequestError::Missing("hookInstance"))?;
        if hook_instance.trim().is_empty() {
            return Err(RequestError::Invalid {
                field: "hookInstance",
                message: "must not be empty".into(),
            });
        }
        let context = self
            .context
            .as_ref()
            .ok_or(RequestError::Missing("context"))?;
        let patient_id = context
            .patient_id
            .clone()
            .ok_or(RequestError::Missing("context.patientId"))?;
        if !is_fhir_id(&patient_id) {
            return Err(RequestError::Invalid {
                field: "context.patientId",
                message: "must be a FHIR id ([A-Za-z0-9-.]{1,64})".into(),
            });
        }
        if expected.is_order_hook() && context.draft_orders.is_none() {
            return Err(RequestError::Missing("context.draftOrders"));
        }
        if let Some(server) = &self.fhir_server
            && !(server.starts_with("http://") || server.starts_with("https://"))
        {
            return Err(RequestError::Invalid {
                field: "fhirServer",
                message: "must be an http(s) URL".into(),
            });
        }
        if self.fhir_authorization.is_some() && self.fhir_server.is_none() {
            return Err(RequestError::Missing(
                "fhirServer (required with fhirAuthorization)",
            ));
        }
        Ok(ValidRequest {
            hook: expected,
            hook_instance,
            patient_id,
            raw: self,
        })
    }
}

impl ValidRequest {
    /// The state of prefetch key `key`.
    pub fn prefetched(&self, key: &str) -> Prefetched<'_> {
        match self.raw.prefetch.as_ref().and_then(|p| p.get(key)) {
            None => Prefetched::Missing,
            Some(raw) if raw.get().trim() == "null" => Prefetched::Null,
            // Only text that names an OperationOutcome is parsed to check its type;
            // everything else is data (this runs on every call, for every key).
            Some(raw) if !raw.get().contains("OperationOutcome") => Prefetched::Data(raw.get()),
            Some(raw) => {
                let parsed = serde_json::from_str::<ResourceType>(raw.get()).ok();
                match parsed {
                    Some(r) if r.resource_type.as_deref() == Some("OperationOutcome") => {
                        // Only information/warning issues (Epic's 4101 "no results") mean
                        // "no data"; an error/fatal one, or none, is a failed prefetch
                        // (FHIR-INPUTS.md "Real-world encodings", "Empty searches").
                        let no_data = !r.issue.is_empty()
                            && r.issue.iter().all(|i| {
                                matches!(i.severity.as_deref(), Some("information" | "warning"))
                            });
                        if no_data {
                            Prefetched::Null
                        } else {
                            Prefetched::Missing
                        }
                    }
                    _ => Prefetched::Data(raw.get()),
                }
            }
        }
    }

    /// The draft orders Bundle text (order hooks).
    pub fn draft_orders(&self) -> Option<&str> {
        self.raw
            .context
            .as_ref()
            .and_then(|c| c.draft_orders.as_deref())
            .map(RawValue::get)
    }

    /// `context.selections` (empty: every draft order).
    pub fn selections(&self) -> &[String] {
        self.raw
            .context
            .as_ref()
            .and_then(|c| c.selections.as_deref())
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> Result<ValidRequest, RequestError> {
        CdsRequest::parse(body.as_bytes())?.validate(Hook::PatientView)
    }

    #[test]
    fn a_minimal_patient_view_request_is_valid() {
        let r = req(r#"{"hook":"patient-view","hookInstance":"a","context":{"patientId":"p-1"}}"#)
            .expect("valid");
        assert_eq!(r.patient_id, "p-1");
        assert!(matches!(r.prefetched("vitals"), Prefetched::Missing));
    }

    #[test]
    fn prefetch_states_are_told_apart() {
        let r = req(
            r#"{"hook":"patient-view","hookInstance":"a","context":{"patientId":"p"},
            "prefetch":{"patient":{"resourceType":"Patient","id":"p"},"vitals":null,
            "labs":{"resourceType":"OperationOutcome","issue":[]}}}"#,
        )
        .expect("valid");
        assert!(matches!(r.prefetched("patient"), Prefetched::Data(_)));
        assert!(matches!(r.prefetched("vitals"), Prefetched::Null));
        assert!(matches!(r.prefetched("labs"), Prefetched::Missing));
        assert!(matches!(r.prefetched("neuro"), Prefetched::Missing));
    }

    #[test]
    fn a_warning_only_operation_outcome_prefetch_is_no_data_and_an_error_one_is_missing() {
        // Epic's empty search: code 4101, severity warning.
        let r = req(
            r#"{"hook":"patient-view","hookInstance":"a","context":{"patientId":"p"},
            "prefetch":{"vitals":{"resourceType":"OperationOutcome","issue":[{"severity":"warning",
            "code":"processing","details":{"coding":[{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.657369",
            "code":"4101"}],"text":"Resource request returns no results."}}]},
            "labs":{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]},
            "neuro":{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing"},
            {"severity":"error","code":"exception"}]}}}"#,
        )
        .expect("valid");
        assert!(matches!(r.prefetched("vitals"), Prefetched::Null));
        assert!(matches!(r.prefetched("labs"), Prefetched::Null));
        assert!(matches!(r.prefetched("neuro"), Prefetched::Missing));
    }

    #[test]
    fn missing_and_wrong_fields_are_refused() {
        assert_eq!(
            req(r#"{"hookInstance":"a","context":{}}"#).err(),
            Some(RequestError::Missing("hook"))
        );
        assert_eq!(
            req(r#"{"hook":"patient-view","context":{"patientId":"p"}}"#).err(),
            Some(RequestError::Missing("hookInstance"))
        );
        assert_eq!(
            req(r#"{"hook":"patient-view","hookInstance":"a"}"#).err(),
            Some(RequestError::Missing("context"))
        );
        assert!(matches!(
            req(r#"{"hook":"order-sign","hookInstance":"a","context":{"patientId":"p"}}"#),
            Err(RequestError::Invalid { field: "hook", .. })
        ));
        assert!(matches!(
            req(r#"{"hook":1}"#),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            req(r#"{"hook":"patient-view","hookInstance":"a","context":{"patientId":"../x"}}"#),
            Err(RequestError::Invalid {
                field: "context.patientId",
                ..
            })
        ));
    }

    #[test]
    fn the_token_is_redacted_in_debug_output() {
        let r = req(r#"{"hook":"patient-view","hookInstance":"a","context":{"patientId":"p"},
            "fhirServer":"http://x","fhirAuthorization":{"access_token":"TOPSECRET","token_type":"Bearer"}}"#)
        .expect("valid");
        assert!(!format!("{r:?}").contains("TOPSECRET"));
    }
}
