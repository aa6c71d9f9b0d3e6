//! The CDS Services this server offers (CDS Hooks 2.0.1 "Discovery"), one JSON file per
//! service under `hooks/`, embedded at compile time.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The hooks this server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `patient-view`: the grading card.
    PatientView,
    /// `order-select`: dose checks on the selected draft orders.
    OrderSelect,
    /// `order-sign`: dose checks on the draft orders being signed.
    OrderSign,
}

impl Hook {
    /// The hook name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Hook::PatientView => "patient-view",
            Hook::OrderSelect => "order-select",
            Hook::OrderSign => "order-sign",
        }
    }

    /// The hook for a wire name.
    pub fn from_name(name: &str) -> Option<Hook> {
        [Hook::PatientView, Hook::OrderSelect, Hook::OrderSign]
            .into_iter()
            .find(|h| h.name() == name)
    }

    /// Whether the hook carries `context.draftOrders`.
    pub fn is_order_hook(self) -> bool {
        !matches!(self, Hook::PatientView)
    }
}

/// One CDS Service definition (a `hooks/*.json` file).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceDefinition {
    /// The `{id}` of `{baseUrl}/cds-services/{id}`.
    pub id: String,
    /// The hook it answers.
    pub hook: String,
    /// Human-friendly name.
    pub title: String,
    /// What it does.
    pub description: String,
    /// Prefetch templates by key.
    pub prefetch: BTreeMap<String, String>,
    /// Preconditions for use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_requirements: Option<String>,
}

impl ServiceDefinition {
    /// The service's hook.
    pub fn hook(&self) -> Hook {
        Hook::from_name(&self.hook).expect("hooks/*.json name only known hooks (checked by a test)")
    }
}

const SOURCES: [&str; 3] = [
    include_str!("../../hooks/crs-icans-grading.json"),
    include_str!("../../hooks/cart-toxicity-order-select.json"),
    include_str!("../../hooks/cart-toxicity-order-sign.json"),
];

/// Every service, in discovery order.
pub fn services() -> &'static [ServiceDefinition] {
    static SERVICES: OnceLock<Vec<ServiceDefinition>> = OnceLock::new();
    SERVICES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|s| {
                serde_json::from_str(s)
                    .expect("hooks/*.json are valid service definitions (checked by a test)")
            })
            .collect()
    })
}

/// The service with this id.
pub fn service(id: &str) -> Option<&'static ServiceDefinition> {
    services().iter().find(|s| s.id == id)
}

/// The service answering `hook` (replay uses this to route a request file).
pub fn service_for_hook(hook: &str) -> Option<&'static ServiceDefinition> {
    services().iter().find(|s| s.hook == hook)
}

/// The discovery document: `{"services": [...]}`.
pub fn discovery_document() -> serde_json::Value {
    serde_json::json!({ "services": services() })
}

/// Fills a prefetch template's `{{context.patientId}}` token. `None` when the template
/// uses a token this service can't fill.
pub fn fill_template(template: &str, patient_id: &str) -> Option<String> {
    let filled = template.replace("{{context.patientId}}", patient_id);
    (!filled.contains("{{")).then_some(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_file_parses_and_names_a_known_hook() {
        let s = services();
        assert_eq!(s.len(), 3);
        let hooks: Vec<Hook> = s.iter().map(|d| d.hook()).collect();
        assert_eq!(
            hooks,
            [Hook::PatientView, Hook::OrderSelect, Hook::OrderSign]
        );
        for d in s {
            assert_eq!(
                d.prefetch.keys().map(String::as_str).collect::<Vec<_>>(),
                [
                    "labs",
                    "medicationAdministrations",
                    "medicationRequests",
                    "neuro",
                    "patient",
                    "procedures",
                    "vitals"
                ]
            );
        }
    }

    #[test]
    fn prefetch_templates_use_only_the_patient_token() {
        for d in services() {
            for t in d.prefetch.values() {
                let filled = fill_template(t, "p1").expect("only context.patientId");
                assert!(filled.contains("Patient/p1"), "{filled}");
                assert!(!filled.contains(' '), "{filled}");
            }
        }
    }
}
