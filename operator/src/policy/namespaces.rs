//! Whether an issuer serves a namespace (`spec.allowedNamespaces`), and the refusal that
//! the controller's condition and `sithsctl plan` both show.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

use crate::api::IssuerKind;

/// Condition reason when the issuer does not allow the namespace.
pub const REASON_NAMESPACE_NOT_ALLOWED: &str = crate::vocabulary::reason::NAMESPACE_NOT_ALLOWED;

/// Whether a namespace with `labels` is allowed by `selector` (absent: every namespace). A
/// selector that cannot be evaluated allows none.
pub fn allows(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_none_or(|s| {
        Selector::try_from(s.clone())
            .map(|sel| sel.matches(labels))
            .unwrap_or(false)
    })
}

/// What to tell a person whose certificate in `ns` names issuer `issuer` of `kind`.
pub fn refusal(kind: IssuerKind, issuer: &str, ns: &str) -> String {
    format!(
        "{kind:?} {issuer:?} does not allow namespace {ns:?} (spec.allowedNamespaces); ask the responsible issuer to allow it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_allow_by_label_and_absence_allows_all() {
        let selector: LabelSelector =
            serde_json::from_value(serde_json::json!({"matchLabels": {"siths": "yes"}})).unwrap();
        let labelled = BTreeMap::from([("siths".to_string(), "yes".to_string())]);
        assert!(allows(Some(&selector), &labelled));
        assert!(!allows(Some(&selector), &BTreeMap::new()));
        assert!(allows(None, &BTreeMap::new()));
        let broken: LabelSelector = serde_json::from_value(
            serde_json::json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
        )
        .unwrap();
        assert!(!allows(Some(&broken), &labelled));
        assert_eq!(
            refusal(IssuerKind::PublicIssuer, "telia", "webb"),
            "PublicIssuer \"telia\" does not allow namespace \"webb\" (spec.allowedNamespaces); ask the responsible issuer to allow it"
        );
    }
}
