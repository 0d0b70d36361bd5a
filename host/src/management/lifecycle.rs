//! The hook through which the management service tells ingestion that a connector was
//! created, changed, enabled, disabled or deleted. The service awaits it before the
//! operation returns, so "disabled" means stopped: once `set_enabled(false)` (or a delete,
//! or a forced plugin unload) has returned, no event of that connector reaches a sink.

use crate::management::model::ConnectorRecord;

/// Reacts to connector changes (the ingestion scheduler).
#[async_trait::async_trait]
pub trait ConnectorLifecycle: Send + Sync {
    /// `rec` was created or changed. If it is enabled, (re)start it with this
    /// configuration; if not, return only once it is fully stopped.
    async fn connector_changed(&self, rec: &ConnectorRecord);

    /// The connector was deleted: stop it (fully, before returning) and drop what
    /// ingestion kept for it.
    async fn connector_deleted(&self, org: &str, id: &str);
}
