//! Nodes over one store: what a node does when a file changes, and how its peers learn of it.
//!
//! A delete or an overwrite is told to every peer (`POST /internal/invalidate/HANDLE`) before
//! its answer leaves: each peer forgets the file's metadata (so its next request reads the new
//! version from the shared store, and derivative keys, which carry the version, change) and
//! drops the file's local derivatives. The writer also purges the shared tier. A peer that does
//! not answer within `broadcast_timeout_ms` is named in the answer and logged; what it knew
//! expires after `meta_ttl_ms` anyway (1 s by default with peers), which bounds the damage of a
//! partition without a metadata read per request.

use super::Origin;
use crate::config::ClusterConfig;
use crate::purge::{EventKind, PurgeEvent};
use std::time::Duration;

/// The other nodes, and how to reach them.
pub struct Peers {
    urls: Vec<String>,
    token: Option<String>,
    client: reqwest::Client,
}

/// What a change did: local derivatives dropped, shared ones, and the peers that did not hear.
#[derive(Debug, Default)]
pub struct Purged {
    pub local: usize,
    pub shared: usize,
    pub peers_told: usize,
    pub peers_unreachable: Vec<String>,
}

impl Purged {
    /// The counts, in a delete's or an overwrite's JSON answer (the peers' only in a cluster).
    pub fn describe(&self, answer: &mut serde_json::Value) {
        answer["derivatives_purged"] = self.local.into();
        answer["shared_purged"] = self.shared.into();
        if self.peers_told > 0 || !self.peers_unreachable.is_empty() {
            answer["peers_told"] = self.peers_told.into();
            answer["peers_unreachable"] = self.peers_unreachable.clone().into();
        }
    }
}

impl Peers {
    /// The configured peers but this node (`own`: its public URL and its `http://listen`).
    pub fn new(config: &ClusterConfig, own: &[String]) -> Peers {
        let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
        let urls = config.peers.iter().filter(|p| !own.iter().any(|o| same(p, o))).cloned().collect();
        let timeout = Duration::from_millis(config.broadcast_timeout_ms.max(1));
        let client = reqwest::Client::builder().timeout(timeout).build().expect("an HTTP client with a timeout");
        Peers { urls, token: config.token.clone(), client }
    }

    /// Tell every peer that `handle` changed; the ones that did not acknowledge.
    async fn tell(&self, handle: &str) -> (usize, Vec<String>) {
        let token = self.token.as_deref().unwrap_or_default();
        let calls = self.urls.iter().map(|base| {
            let url = format!("{}/internal/invalidate/{handle}", base.trim_end_matches('/'));
            let call = self.client.post(url).bearer_auth(token).send();
            async move { (base, call.await.map(|r| r.status())) }
        });
        let mut unreachable = Vec::new();
        for (base, answer) in futures_util::future::join_all(calls).await {
            match answer {
                Ok(status) if status.is_success() => {}
                Ok(status) => {
                    tracing::warn!(peer = %base, %status, handle, "peer refused an invalidation");
                    unreachable.push(base.clone());
                }
                Err(e) => {
                    tracing::warn!(peer = %base, error = %e, handle, "peer did not hear of a changed file");
                    unreachable.push(base.clone());
                }
            }
        }
        (self.urls.len() - unreachable.len(), unreachable)
    }

    /// Whether `token` is the cluster's (compared as blake3 digests, whose equality is constant
    /// time).
    pub fn authentic(&self, token: &str) -> bool {
        self.token.as_deref().is_some_and(|t| blake3::hash(t.as_bytes()) == blake3::hash(token.as_bytes()))
    }
}

impl Origin {
    /// After a delete or an overwrite through this node: drop the file's derivatives here and
    /// in the shared tier, and tell the peers, before the change is answered; then queue the
    /// CDN purges (the edge refetches from nodes that no longer have the old bytes).
    pub(super) async fn changed(&self, handle: &str, event: EventKind) -> Purged {
        let local = self.forget_file(handle).await;
        let shared = async {
            match &self.shared {
                Some(tier) => tier.purge_source(handle).await,
                None => 0,
            }
        };
        let ((peers_told, peers_unreachable), shared) = tokio::join!(self.peers.tell(handle), shared);
        if !self.purger.is_empty() {
            self.purger.enqueue(PurgeEvent::new(event, handle, super::files::purge_keys(handle)));
        }
        Purged { local, shared, peers_told, peers_unreachable }
    }

    /// Another node changed `handle`: forget its metadata and drop its local derivatives.
    pub async fn forget_file(&self, handle: &str) -> usize {
        self.store.forget(handle);
        let (cache, h) = (self.cache.clone(), handle.to_string());
        tokio::task::spawn_blocking(move || cache.purge_source(&h)).await.unwrap_or(0)
    }

    /// Whether the store, the shared tier and the cache index answer (`/readyz`).
    pub async fn ready(&self) -> serde_json::Value {
        let store = self.store.reachable().await;
        let shared = match &self.shared {
            Some(tier) => Some(tier.reachable().await),
            None => None,
        };
        let cache = self.cache.reachable();
        let ok = store && cache && shared != Some(false);
        serde_json::json!({ "ready": ok, "store": store, "cache": cache, "shared_cache": shared })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_skips_itself_and_checks_tokens() {
        let config = ClusterConfig {
            peers: vec!["http://10.0.0.1:8080".into(), "http://10.0.0.2:8080/".into()],
            token: Some("a-cluster-token-0123".into()),
            ..ClusterConfig::default()
        };
        let peers = Peers::new(&config, &["http://10.0.0.2:8080".into()]);
        assert_eq!(peers.urls, vec!["http://10.0.0.1:8080".to_string()]);
        assert!(peers.authentic("a-cluster-token-0123"));
        assert!(!peers.authentic("a-cluster-token-012") && !peers.authentic(""));
        let open = Peers::new(&ClusterConfig::default(), &[]);
        assert!(!open.authentic(""), "no token configured: nothing is authentic");
    }
}
