//! [`VaultCredentialSource`]: the broker's [`CredentialSource`] for one connector, backed
//! by the vault and resolving slot → credential name → version on every request.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CredentialVault;
use crate::broker::credentials::{Credential, CredentialError, CredentialSource};

/// Credentials of one connector: its bindings (slot → credential name), resolved at
/// request time to the promoted version (or to a pinned version of one name, for tests
/// of a pending version).
pub struct VaultCredentialSource {
    vault: CredentialVault,
    org: String,
    bindings: BTreeMap<String, String>,
    pin: Option<(String, u32)>,
}

impl std::fmt::Debug for VaultCredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultCredentialSource")
            .field("org", &self.org)
            .field("bindings", &self.bindings)
            .field("pin", &self.pin)
            .finish()
    }
}

impl VaultCredentialSource {
    pub(super) fn new(
        vault: CredentialVault,
        org: String,
        bindings: BTreeMap<String, String>,
        pin: Option<(String, u32)>,
    ) -> Self {
        VaultCredentialSource {
            vault,
            org,
            bindings,
            pin,
        }
    }
}

#[async_trait::async_trait]
impl CredentialSource for VaultCredentialSource {
    async fn credential_for_slot(
        &self,
        slot: &str,
    ) -> Result<Option<Arc<Credential>>, CredentialError> {
        let Some(name) = self.bindings.get(slot) else {
            return Ok(None);
        };
        let version = self
            .pin
            .as_ref()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v);
        match self.vault.credential(&self.org, name, version)? {
            Some(c) => Ok(Some(c)),
            None => Err(CredentialError::Invalid {
                slot: slot.to_string(),
                message: format!(
                    "credential {name:?} bound to this slot does not exist (deleted?)"
                ),
            }),
        }
    }

    fn bound_slots(&self) -> Vec<String> {
        self.bindings.keys().cloned().collect()
    }
}
