//! Filestack's multipart upload protocol, as filestack-python and filestack-js speak it:
//! `start` opens a session, `upload` announces a part (or, in intelligent ingestion, a chunk of
//! one at an offset) with its md5 and answers where to PUT it (Refract itself), the PUT is checked
//! against the md5, `commit` closes an intelligent part, `complete` assembles the parts in order
//! into a spooled upload and stores it like any other. Parts may come in any order and at once.
//! A session idle for `multipart_timeout_secs` is dropped with its parts.

use super::files::FileFields;
use super::{Answer, Origin};
use crate::error::{Error, Result};
use crate::security::Credentials;
use crate::url::SecurityParams;
use base64::Engine;
use bytes::Bytes;
use md5::Digest as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The store options of `start` (what Refract records; `location` is checked against the
/// app's storage, `region` is ignored: the configured store is used).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StoreOptions {
    pub path: Option<String>,
    pub container: Option<String>,
    pub location: Option<String>,
}

/// The JSON body of every multipart call (each call uses some of the fields).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MultipartCall {
    pub apikey: Option<String>,
    pub upload_id: Option<String>,
    pub filename: Option<String>,
    pub mimetype: Option<String>,
    pub size: Option<u64>,
    pub part: Option<u32>,
    pub offset: Option<u64>,
    pub md5: Option<String>,
    #[serde(default)]
    pub store: Option<StoreOptions>,
    pub policy: Option<String>,
    pub signature: Option<String>,
    #[serde(default)]
    pub fii: bool,
}

impl MultipartCall {
    fn creds(&self) -> Option<Credentials> {
        match (&self.policy, &self.signature) {
            (Some(p), Some(s)) => Some(SecurityParams { policy: p.clone(), signature: s.clone() }.into()),
            _ => None,
        }
    }

    fn upload_id(&self) -> Result<&str> {
        self.upload_id.as_deref().ok_or_else(|| Error::bad("`upload_id` is missing"))
    }
}

/// One upload in progress.
pub struct Session {
    fields: FileFields,
    size: u64,
    dir: PathBuf,
    /// (part, offset) → the md5 announced for it (base64 of the binary digest).
    announced: Mutex<BTreeMap<(u32, u64), String>>,
    /// (part, offset) → bytes received and checked.
    received: Mutex<BTreeMap<(u32, u64), u64>>,
    touched: Mutex<std::time::Instant>,
}

impl Drop for Session {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The open sessions, dropped (with their parts) when idle longer than the timeout.
pub struct Sessions {
    open: Mutex<std::collections::HashMap<String, Arc<Session>>>,
    timeout: std::time::Duration,
}

impl Sessions {
    pub fn new(timeout: std::time::Duration) -> Sessions {
        Sessions { open: Default::default(), timeout }
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.open.lock().unwrap().get(id).cloned()?;
        *session.touched.lock().unwrap() = std::time::Instant::now();
        Some(session)
    }

    fn insert(&self, id: String, session: Session) {
        self.open.lock().unwrap().insert(id, Arc::new(session));
    }

    fn remove(&self, id: &str) {
        self.open.lock().unwrap().remove(id);
    }

    /// Drop the sessions idle past the timeout; their parts go with the last reference.
    fn sweep(&self) -> usize {
        let mut open = self.open.lock().unwrap();
        let before = open.len();
        open.retain(|_, s| s.touched.lock().unwrap().elapsed() < self.timeout);
        before - open.len()
    }
}

/// Most a single part PUT may carry (the SDKs send 5–8 MiB).
const MAX_PART_BYTES: u64 = 64 << 20;

impl Origin {
    pub async fn multipart_start(&self, call: MultipartCall) -> Result<Answer> {
        let size = call.size.ok_or_else(|| Error::bad("`size` is missing"))?;
        if size > self.config.max_upload_bytes {
            let limit = self.config.max_upload_bytes;
            return Err(Error::PayloadTooLarge(format!("upload is larger than the limit of {limit} bytes")));
        }
        let store = call.store.clone().unwrap_or_default();
        let fields = FileFields {
            filename: call.filename.clone(),
            mimetype: call.mimetype.clone().filter(|m| m != "application/octet-stream"),
            container: store.container,
            path: store.path,
            apikey: call.apikey.clone(),
            creds: call.creds(),
            location: store.location,
            source_url: None,
            size: Some(size),
        };
        drop(self.begin_upload(&fields, None).await?);
        self.sweep_multipart();
        let id = crate::store::new_handle() + &crate::store::new_handle();
        let dir = self.store.scratch("multipart").join(&id);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| Error::internal(format!("multipart dir: {e}")))?;
        let touched = Mutex::new(std::time::Instant::now());
        let session =
            Session { fields, size, dir, announced: Default::default(), received: Default::default(), touched };
        self.multipart.insert(id.clone(), session);
        let key = call.apikey.unwrap_or_default();
        let mut answer = serde_json::json!({
            "uri": format!("/{key}/{id}"),
            "region": "local",
            "upload_id": id,
            "location_url": location_url(&self.public_url),
            "location_region": "local",
        });
        if call.fii {
            answer["upload_type"] = "intelligent_ingestion".into();
        }
        Ok(Answer::Json(answer))
    }

    /// Drop the uploads idle past `multipart_timeout_secs`, with their parts (at each start and
    /// with the cache's housekeeping).
    pub fn sweep_multipart(&self) {
        let dropped = self.multipart.sweep();
        if dropped > 0 {
            tracing::info!(dropped, "multipart uploads abandoned past multipart_timeout_secs");
        }
    }

    fn session(&self, id: &str) -> Result<Arc<Session>> {
        self.multipart.get(id).ok_or_else(|| Error::NotFound(format!("no upload in progress with id `{id}`")))
    }

    /// Where to PUT a part (or a chunk of one): a URL of this server, remembered with its md5.
    pub async fn multipart_upload(&self, call: MultipartCall) -> Result<Answer> {
        let id = call.upload_id()?;
        let session = self.session(id)?;
        let part =
            call.part.filter(|p| (1..=10_000).contains(p)).ok_or_else(|| Error::bad("`part` must be 1…10000"))?;
        let offset = call.offset.unwrap_or(0);
        let md5 = call.md5.clone().ok_or_else(|| Error::bad("`md5` is missing"))?;
        session.announced.lock().unwrap().insert((part, offset), md5.clone());
        let url = format!("{}/multipart/part/{id}/{part}/{offset}", self.public_url);
        Ok(Answer::Json(
            serde_json::json!({ "url": url, "headers": { "Content-MD5": md5 }, "location_url": location_url(&self.public_url) }),
        ))
    }

    /// A part's bytes: refused unless their md5 is the one announced. Answers the part's ETag.
    pub async fn multipart_put(&self, id: &str, part: u32, offset: u64, body: Bytes) -> Result<String> {
        let session = self.session(id)?;
        let announced = session.announced.lock().unwrap().get(&(part, offset)).cloned();
        let announced = announced.ok_or_else(|| Error::bad(format!("part {part} at {offset} was not announced")))?;
        if body.len() as u64 > MAX_PART_BYTES {
            return Err(Error::PayloadTooLarge(format!("a part may carry at most {MAX_PART_BYTES} bytes")));
        }
        let digest = md5::Md5::digest(&body);
        if base64::engine::general_purpose::STANDARD.encode(digest) != announced.trim() {
            return Err(Error::bad(format!("part {part}: its bytes do not match the md5 announced for them")));
        }
        let path = session.dir.join(format!("{part:05}-{offset:012}"));
        let len = body.len() as u64;
        tokio::fs::write(&path, &body).await.map_err(|e| Error::internal(format!("multipart part: {e}")))?;
        session.received.lock().unwrap().insert((part, offset), len);
        Ok(format!("\"{}\"", hex::encode(digest)))
    }

    /// Nothing to do for an intelligent part: its chunks are already checked and kept.
    pub async fn multipart_commit(&self, call: MultipartCall) -> Result<Answer> {
        self.session(call.upload_id()?)?;
        Ok(Answer::Json(serde_json::json!({})))
    }

    /// Assemble the parts in order (they must cover the announced size exactly) and store them.
    pub async fn multipart_complete(&self, call: MultipartCall) -> Result<Answer> {
        let id = call.upload_id()?.to_string();
        let session = self.session(&id)?;
        let mut fields = session.fields.clone();
        // credentials may come again (and be required) on complete
        fields.creds = call.creds().or(fields.creds);
        fields.apikey = call.apikey.clone().or(fields.apikey);
        let slot = self.begin_upload(&fields, None).await?;
        let chunks = contiguous(&session.received.lock().unwrap(), session.size)?;
        let mut spool = self.store.spool().await?;
        for (part, offset) in chunks {
            let bytes = tokio::fs::read(session.dir.join(format!("{part:05}-{offset:012}")))
                .await
                .map_err(|e| Error::internal(format!("multipart part: {e}")))?;
            spool.write(&bytes).await?;
        }
        let spooled = spool.finish().await?;
        self.multipart.remove(&id);
        tokio::fs::remove_dir_all(&session.dir).await.ok();
        let answer = self.finish_upload(spooled, fields, None).await?;
        drop(slot);
        let Answer::Json(mut json) = answer else { return Ok(answer) };
        json["status"] = "Stored".into();
        json["mimetype"] = json["type"].clone();
        Ok(Answer::Json(json))
    }
}

/// The chunks in file order, if they cover `0..size` without gap or overlap.
fn contiguous(received: &BTreeMap<(u32, u64), u64>, size: u64) -> Result<Vec<(u32, u64)>> {
    let mut total = 0u64;
    let mut expected_part = 1;
    let mut next_offset = 0;
    for (&(part, offset), &len) in received {
        if part != expected_part {
            if part != expected_part + 1 || next_offset == 0 {
                return Err(Error::bad(format!("part {} is missing", expected_part + u32::from(next_offset > 0))));
            }
            expected_part = part;
            next_offset = 0;
        }
        if offset != next_offset {
            return Err(Error::bad(format!("part {part}: bytes from {next_offset} are missing")));
        }
        next_offset += len;
        total += len;
    }
    if total != size {
        return Err(Error::bad(format!("the parts hold {total} bytes, the upload announced {size}")));
    }
    Ok(received.keys().copied().collect())
}

/// Filestack answers a bare host (the SDKs prefix `https://`); over plain http the whole URL,
/// which filestack-js uses as it is.
fn location_url(public_url: &str) -> String {
    match public_url.strip_prefix("https://") {
        Some(host) => host.trim_end_matches('/').to_string(),
        None => public_url.trim_end_matches('/').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_must_cover_the_file() {
        let map = |v: &[((u32, u64), u64)]| v.iter().copied().collect::<BTreeMap<_, _>>();
        assert!(contiguous(&map(&[((1, 0), 5), ((2, 0), 5), ((3, 0), 2)]), 12).is_ok());
        assert!(contiguous(&map(&[((1, 0), 4), ((1, 4), 4), ((2, 0), 4)]), 12).is_ok(), "chunks at offsets");
        assert!(contiguous(&map(&[((1, 0), 5), ((3, 0), 5)]), 10).is_err(), "a missing part");
        assert!(contiguous(&map(&[((1, 0), 4), ((1, 5), 4)]), 8).is_err(), "a gap in a part");
        assert!(contiguous(&map(&[((1, 0), 5)]), 6).is_err(), "short of the size");
        assert!(contiguous(&map(&[((2, 0), 5)]), 5).is_err(), "part 1 missing");
        assert!(contiguous(&map(&[]), 0).is_ok(), "an empty file");
    }
}
