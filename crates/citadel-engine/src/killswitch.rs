//! Kill switches: an immediate stop for a script, a folder, a tenant or the
//! whole platform. Engaged switches live in the database (so every node
//! sees them); each node keeps a copy it refreshes every few tens of
//! milliseconds and checks before every run, and aborts its runs in flight
//! that a newly seen switch covers.

use std::sync::Arc;
use std::sync::Weak;

pub use citadel_domain::KillScope;
use citadel_store::{KillSwitch, StoreError};

use crate::{Engine, EngineInner, STOP_KILLED, lock, upgrade};

/// Whether a switch stops runs of script `name` of `tenant_id`.
pub fn covers(switch: &KillSwitch, tenant_id: &str, name: &str) -> bool {
    match switch.scope {
        KillScope::Platform => true,
        KillScope::Tenant => switch.tenant_id == tenant_id,
        KillScope::Folder => {
            switch.tenant_id == tenant_id && name.starts_with(switch.target.as_str())
        }
        KillScope::Script => switch.tenant_id == tenant_id && switch.target == name,
    }
}

impl Engine {
    /// The switch that stops runs of this script, if any.
    pub fn kill_switch_for(&self, tenant_id: &str, name: &str) -> Option<KillSwitch> {
        let switches = Arc::clone(&lock(&self.switches));
        switches
            .iter()
            .find(|s| covers(s, tenant_id, name))
            .cloned()
    }

    /// Every engaged switch, as this node last saw them.
    pub fn kill_switches(&self) -> Arc<Vec<KillSwitch>> {
        Arc::clone(&lock(&self.switches))
    }

    /// Engages a switch (false: it already was) and aborts the runs in
    /// flight here that it covers.
    pub async fn engage(&self, switch: KillSwitch) -> Result<bool, StoreError> {
        let new = self.store.engage_kill_switch(&switch).await?;
        self.refresh_switches().await?;
        Ok(new)
    }

    /// Releases a switch (false: it was not engaged).
    pub async fn release(
        &self,
        scope: &str,
        tenant_id: &str,
        target: &str,
    ) -> Result<bool, StoreError> {
        let released = self
            .store
            .release_kill_switch(scope, tenant_id, target)
            .await?;
        self.refresh_switches().await?;
        Ok(released)
    }

    pub(crate) async fn refresh_switches(&self) -> Result<(), StoreError> {
        let switches = self.store.kill_switches().await?;
        self.apply_switches(switches);
        Ok(())
    }

    fn apply_switches(&self, switches: Vec<KillSwitch>) {
        if !switches.is_empty() {
            let flights: Vec<_> = lock(&self.in_flight).values().cloned().collect();
            for f in flights {
                if let Some(s) = switches
                    .iter()
                    .find(|s| covers(s, &f.tenant_id, &f.script_name))
                {
                    f.stop(STOP_KILLED, Some(s.clone()));
                }
            }
        }
        *lock(&self.switches) = Arc::new(switches);
    }
}

/// Picks up switches engaged on other nodes; ends when the engine is gone.
pub(crate) fn spawn_poller(weak: Weak<EngineInner>) {
    tokio::spawn(async move {
        loop {
            let Some(engine) = upgrade(&weak) else { return };
            let every = engine.config.kill_switch_poll;
            if let Err(e) = engine.refresh_switches().await {
                tracing::warn!(error = %e, "cannot read kill switches");
            }
            drop(engine);
            tokio::time::sleep(every).await;
        }
    });
}
