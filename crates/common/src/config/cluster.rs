//! `[cluster]`: how a node takes part in a cluster of nodes on one database.

use crate::cluster::Role;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's name among the members; empty: its internal address.
    pub member_id: String,
    /// Where the other nodes reach this one (host:port); empty: the frontend's address.
    pub address: String,
    /// The services this node runs, by Temporal's names.
    pub services: Vec<Role>,
    /// How often a node renews its membership row.
    pub heartbeat_interval_ms: u64,
    /// How long a membership row stays live without a renewal: a node that stops renewing
    /// loses its shards and queues to the others this long after its last heartbeat.
    pub lease_ms: u64,
    /// `[cluster.tls]`: how this node calls the others when their ports speak TLS.
    pub tls: Option<ClusterTlsConfig>,
}

/// TLS for calls between the members (forwarded calls, tasks handed to a queue's owner).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsConfig {
    /// PEM: the CAs the members' server certificates chain to.
    pub ca_file: PathBuf,
    /// PEM certificate and key this node presents to the others, when they require client
    /// certificates (`server.tls.client_ca_file`). Often the node's own server pair, if its
    /// certificate may also be used by a client.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name the members' certificates are checked against; unset, the host of each
    /// member's address.
    #[serde(default)]
    pub server_name: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            member_id: String::new(),
            address: String::new(),
            services: Role::ALL.to_vec(),
            heartbeat_interval_ms: 1_000,
            lease_ms: 5_000,
            tls: None,
        }
    }
}

impl ClusterConfig {
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// A lease must outlast a missed heartbeat or two, or a live node would flap.
    pub fn check(&self) -> Result<(), String> {
        if self.services.is_empty() {
            return Err("[cluster] services must name at least one service".into());
        }
        if self.heartbeat_interval_ms == 0 {
            return Err("[cluster] heartbeat_interval_ms must be positive".into());
        }
        if let Some(tls) = &self.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            return Err("[cluster.tls] cert_file and key_file go together".into());
        }
        if self.lease_ms < 2 * self.heartbeat_interval_ms {
            return Err(format!(
                "[cluster] lease_ms ({}) must be at least twice heartbeat_interval_ms ({})",
                self.lease_ms, self.heartbeat_interval_ms
            ));
        }
        Ok(())
    }
}
