//! The shared second level: derivatives on S3-compatible storage, behind each node's memory and
//! disk tiers, so that a node that restarts or joins finds work another node already did.
//!
//! Same content-addressed keys as the local tiers (the key covers the plan, the source identity
//! and its version, so an overwrite can never meet an old derivative here either). One object
//! per entry, `d/<hex[..2]>/<hex>`: a short header, the entry's metadata as JSON and the bytes,
//! written whole by one PUT, so metadata and bytes cannot be torn apart; the checksum is checked
//! on every read. Purges find an entry through an empty marker per identity it may be purged
//! by: `s/<blake3(identity)>/<hex>`.
//!
//! Reads and writes are async I/O on the executor; a failing store is logged and treated as a
//! miss, never as an error of the request: the shared tier is an optimisation.

use super::{now, EntryMeta, Key};
use crate::store::{Backend, StoreError};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"RFRCT01\n";

pub struct SharedTier {
    backend: Arc<dyn Backend>,
}

fn entry_key(key: &Key) -> String {
    let hex = hex::encode(key);
    format!("d/{}/{hex}", &hex[..2])
}

fn marker_prefix(identity: &str) -> String {
    format!("s/{}/", &blake3::hash(identity.as_bytes()).to_hex()[..32])
}

/// Header, metadata, bytes: one object.
fn pack(bytes: &[u8], meta: &EntryMeta) -> Bytes {
    let json = serde_json::to_vec(meta).expect("entry metadata serialises");
    let mut out = BytesMut::with_capacity(MAGIC.len() + 4 + json.len() + bytes.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(bytes);
    out.freeze()
}

/// The entry an object holds, if it is whole, intact and unexpired.
fn unpack(object: Bytes) -> Option<(Bytes, EntryMeta)> {
    let rest = object.strip_prefix(MAGIC)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let meta: EntryMeta = serde_json::from_slice(rest.get(4..4 + len)?).ok()?;
    let start = MAGIC.len() + 4 + len;
    let bytes = object.slice(start..);
    let intact = bytes.len() as u64 == meta.length && blake3::hash(&bytes).to_hex().as_str() == meta.checksum;
    (intact && meta.expires > now()).then_some((bytes, meta))
}

impl SharedTier {
    pub fn new(backend: Arc<dyn Backend>) -> SharedTier {
        SharedTier { backend }
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// The entry under `key`, or `None` (absent, expired, torn, or the store failing).
    pub async fn get(&self, key: &Key) -> Option<(Bytes, EntryMeta)> {
        let object = match self.backend.read(&entry_key(key)).await {
            Ok(object) => object,
            Err(StoreError::Missing(_)) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "shared cache read failed; computing instead");
                return None;
            }
        };
        let entry = unpack(object);
        if entry.is_none() {
            tracing::warn!(key = %hex::encode(key), "shared cache entry torn or expired; ignored");
        }
        entry
    }

    /// Keep an entry: its purge markers first, then the entry (a purge that lists the markers
    /// meanwhile removes it, never leaves it unfindable).
    pub async fn put(&self, key: &Key, bytes: &[u8], meta: &EntryMeta) {
        let hex = hex::encode(key);
        let identities = std::iter::once(&meta.source).chain(&meta.overlays);
        for identity in identities {
            let marker = format!("{}{hex}", marker_prefix(identity));
            if let Err(e) = self.backend.put(&marker, Bytes::new()).await {
                tracing::warn!(error = %e, "shared cache write failed");
                return;
            }
        }
        if let Err(e) = self.backend.put(&entry_key(key), pack(bytes, meta)).await {
            tracing::warn!(error = %e, "shared cache write failed");
        }
    }

    /// Remove every entry drawn from `identity` (a source or an overlay). Returns how many.
    pub async fn purge_source(&self, identity: &str) -> usize {
        let prefix = marker_prefix(identity);
        let markers = match self.backend.list(&prefix).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "shared cache purge could not list its entries");
                return 0;
            }
        };
        let mut removed = 0;
        for marker in markers {
            let Some(hex) = marker.rsplit('/').next() else { continue };
            let Some(key) = hex::decode(hex).ok().and_then(|k| Key::try_from(k).ok()) else { continue };
            // markers of an entry already purged through another identity point at nothing
            let entry = entry_key(&key);
            if matches!(self.backend.head(&entry).await, Ok(Some(_))) && self.backend.delete(&entry).await.is_ok() {
                removed += 1;
            }
            self.backend.delete(&marker).await.ok();
        }
        removed
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn reachable(&self) -> bool {
        self.backend.head("d/ready").await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::FsBackend;

    fn meta(bytes: &[u8], expires: u64) -> EntryMeta {
        let base = super::super::tests::meta(bytes, expires, now(), "HANDLE1");
        EntryMeta { overlays: vec!["MARK1".into()], auto_quality: Some(61), ..base }
    }

    fn tier(dir: &std::path::Path) -> SharedTier {
        SharedTier::new(Arc::new(FsBackend::open(&dir.join("root"), &dir.join("tmp")).unwrap()))
    }

    #[tokio::test]
    async fn entries_round_trip_and_purge_by_source_or_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path());
        let (a, b) = (super::super::key(&["a"]), super::super::key(&["b"]));
        t.put(&a, b"bytes of a", &meta(b"bytes of a", now() + 60)).await;
        t.put(&b, b"bytes of b", &meta(b"bytes of b", now() + 60)).await;
        let (bytes, m) = t.get(&a).await.unwrap();
        assert_eq!((&bytes[..], m.auto_quality), (&b"bytes of a"[..], Some(61)));
        assert_eq!(t.purge_source("MARK1").await, 2, "an overlay names its derivatives too");
        assert!(t.get(&a).await.is_none() && t.get(&b).await.is_none());
        assert_eq!(t.purge_source("HANDLE1").await, 0, "nothing left to purge by the source");
        assert_eq!(t.purge_source("HANDLE1").await, 0);
    }

    #[tokio::test]
    async fn torn_or_expired_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path());
        let k = super::super::key(&["k"]);
        t.put(&k, b"old", &meta(b"old", now().saturating_sub(1))).await;
        assert!(t.get(&k).await.is_none(), "expired");
        let mut packed = pack(b"whole", &meta(b"whole", now() + 60)).to_vec();
        packed.truncate(packed.len() - 1);
        t.backend.put(&entry_key(&k), packed.into()).await.unwrap();
        assert!(t.get(&k).await.is_none(), "torn");
        t.backend.put(&entry_key(&k), Bytes::from_static(b"not an entry")).await.unwrap();
        assert!(t.get(&k).await.is_none(), "foreign");
    }
}
