//! Credential bindings of a connector on its page: each slot the plugin declares, the
//! credential bound to it, whether a secret is stored, and a write-only form to set or
//! replace it. A secret is never rendered back: the form's inputs always start empty.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::session::UiSession;
use super::words::credential_kind_label;
use crate::api::AppState;
use crate::management::model::ConnectorRecord;
use crate::manifest::{CredentialKind, Manifest};

/// One slot as the page shows it.
#[derive(Debug, Clone)]
pub struct SlotView {
    /// Slot name.
    pub slot: String,
    /// What it is for.
    pub description: String,
    /// Accepted kinds.
    pub kinds: Vec<CredentialKind>,
    /// The plugin needs it.
    pub required: bool,
    /// Credential name bound to it.
    pub bound: Option<String>,
    /// What is stored for that credential ("set, version 2, 2026-...") without its value.
    pub stored: Option<String>,
}

/// The slots of a connector.
pub fn view(
    _state: &AppState,
    _s: &UiSession,
    _org: &str,
    rec: &ConnectorRecord,
    manifest: Option<&Manifest>,
) -> Vec<SlotView> {
    let Some(m) = manifest else {
        return Vec::new();
    };
    m.credential_slots
        .iter()
        .map(|slot| SlotView {
            slot: slot.name.clone(),
            description: slot.description.clone(),
            kinds: slot.kinds.clone(),
            required: slot.required,
            bound: rec.spec.credentials.get(&slot.name).cloned(),
            stored: None,
        })
        .collect()
}

/// The credentials section.
pub fn markup(
    _s: &UiSession,
    _id: &str,
    slots: &[SlotView],
    _errors: &BTreeMap<String, Vec<String>>,
) -> Markup {
    html! {
        section aria-labelledby="h-credentials" {
            h2 #h-credentials { "Credentials" }
            @if slots.is_empty() { p { "The plugin uses no credentials." } }
            @for v in slots {
                div.card {
                    h3 { "Slot " code { (v.slot) } @if v.required { " (required)" } }
                    p { (v.description) }
                    p.muted { "Accepts: " (v.kinds.iter().map(|k| credential_kind_label(*k)).collect::<Vec<_>>().join(", ")) }
                    p {
                        "Bound credential: "
                        @match &v.bound { Some(b) => code { (b) }, None => span.muted { "none" } }
                        @if let Some(st) = &v.stored { " · " (st) }
                    }
                }
            }
        }
    }
}
