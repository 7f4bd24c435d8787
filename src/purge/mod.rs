//! CDN purge hooks: when a stored file is deleted or overwritten, the edge is told to drop what
//! it holds of it (by surrogate key, cache tag or path; see `hooks.rs` for the request shapes).
//!
//! Each hook has a bounded queue and a worker: the delete only enqueues (never waits on a CDN),
//! and a full queue sends the purge straight to the dead-letter file. The worker sends a few
//! purges at once, each retried with exponential backoff on 5xx, 429 and network errors (not on
//! other 4xx, which a retry would not change); a purge that still fails is appended to
//! `DATA_DIR/purge-dead-letter.jsonl`. Credentials stay out of the log: lines name the hook.

mod hooks;
mod sigv4;
#[cfg(test)]
mod tests;

pub use hooks::{EventKind, Hook, HookConfig, HookKind, Prepared, PurgeEvent, Secret, Target};

use crate::metrics::METRICS;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// Purges sent at once by one hook; more wait in its queue.
const IN_FLIGHT: usize = 4;

/// The file failed purges are appended to, in the data directory.
pub const DEAD_LETTER_FILE: &str = "purge-dead-letter.jsonl";

/// The configured hooks, their queues and the dead-letter file.
pub struct Purger {
    queues: Vec<Queue>,
    dead_letter: Arc<DeadLetter>,
}

struct Queue {
    hook: Arc<Hook>,
    tx: mpsc::Sender<PurgeEvent>,
    /// Taken by the worker when it starts.
    rx: Mutex<Option<mpsc::Receiver<PurgeEvent>>>,
}

impl Purger {
    /// Check the hooks (an error names the entry) and make their queues; nothing is sent before
    /// [`Purger::start`].
    pub fn new(configs: &[HookConfig], data_dir: &Path) -> Result<Purger, String> {
        let mut queues = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let hook = config.build(i)?;
            if queues.iter().any(|q: &Queue| q.hook.name == hook.name) {
                return Err(format!(
                    "configuration: `purge_hooks[{i}]` repeats the name `{}` (give each hook a `name`)",
                    hook.name
                ));
            }
            let (tx, rx) = mpsc::channel(hook.queue);
            queues.push(Queue { hook: Arc::new(hook), tx, rx: Mutex::new(Some(rx)) });
        }
        let dead_letter = Arc::new(DeadLetter { path: data_dir.join(DEAD_LETTER_FILE), lock: Mutex::new(()) });
        Ok(Purger { queues, dead_letter })
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Start one worker per hook on the current Tokio runtime (once; later calls do nothing).
    pub fn start(&self) {
        if self.queues.is_empty() {
            return;
        }
        let client = match reqwest::Client::builder()
            // a credential must not follow a redirect to another host
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "CDN purge hooks: cannot build the HTTP client; purges are not sent");
                return;
            }
        };
        for queue in &self.queues {
            let Some(rx) = queue.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else { continue };
            tracing::info!(hook = %queue.hook.name, kind = queue.hook.kind(), "CDN purge hook");
            tokio::spawn(worker(queue.hook.clone(), rx, client.clone(), self.dead_letter.clone()));
        }
    }

    /// Queue a purge on every hook; never waits. A hook whose queue is full dead-letters it.
    pub fn enqueue(&self, event: PurgeEvent) {
        for queue in &self.queues {
            if let Err(e) = queue.tx.try_send(event.clone()) {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "hook stopped",
                };
                tracing::warn!(hook = %queue.hook.name, handle = %event.handle, why, "CDN purge dropped");
                METRICS.cdn_purges.with_label_values(&[&queue.hook.name, "dead_letter"]).inc();
                self.dead_letter.write_off_thread(record(&queue.hook, &event, 0, why));
            }
        }
    }
}

/// Take purges off the queue and send them, at most [`IN_FLIGHT`] at a time.
async fn worker(hook: Arc<Hook>, mut rx: mpsc::Receiver<PurgeEvent>, client: reqwest::Client, dl: Arc<DeadLetter>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    while let Some(event) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let (hook, client, dl) = (hook.clone(), client.clone(), dl.clone());
        tokio::spawn(async move {
            deliver(&hook, &event, &client, &dl).await;
            drop(slot);
        });
    }
}

/// What one attempt came to.
enum Attempt {
    Sent(u16),
    /// Worth another try (5xx, 429, network); the peer may say how long to wait.
    Retry(String, Option<Duration>),
    Fatal(String),
}

/// Send one purge, retrying with backoff; dead-letter it when every attempt failed.
async fn deliver(hook: &Hook, event: &PurgeEvent, client: &reqwest::Client, dl: &Arc<DeadLetter>) {
    let mut last_error = String::new();
    let mut attempt = 0;
    while attempt < hook.attempts {
        attempt += 1;
        let wait = match send(hook, event, client).await {
            Attempt::Sent(status) => {
                METRICS.cdn_purges.with_label_values(&[&hook.name, "sent"]).inc();
                tracing::info!(hook = %hook.name, handle = %event.handle, status, attempt, "CDN purge sent");
                return;
            }
            Attempt::Fatal(error) => {
                METRICS.cdn_purges.with_label_values(&[&hook.name, "failed"]).inc();
                tracing::warn!(hook = %hook.name, handle = %event.handle, attempt, %error, "CDN purge refused");
                last_error = error;
                break;
            }
            Attempt::Retry(error, after) => {
                METRICS.cdn_purges.with_label_values(&[&hook.name, "failed"]).inc();
                tracing::warn!(hook = %hook.name, handle = %event.handle, attempt, %error, "CDN purge failed");
                last_error = error;
                backoff(hook, attempt).max(after.unwrap_or_default()).min(hook.max_backoff)
            }
        };
        if attempt < hook.attempts {
            tokio::time::sleep(wait).await;
        }
    }
    METRICS.cdn_purges.with_label_values(&[&hook.name, "dead_letter"]).inc();
    tracing::error!(hook = %hook.name, handle = %event.handle, attempts = attempt, "CDN purge given up; see {DEAD_LETTER_FILE}");
    dl.write_off_thread(record(hook, event, attempt, &last_error));
}

/// One attempt.
async fn send(hook: &Hook, event: &PurgeEvent, client: &reqwest::Client) -> Attempt {
    let prepared = hook.request(event, SystemTime::now());
    let mut req = client.post(prepared.url).timeout(hook.timeout).body(prepared.body);
    for (name, value) in &prepared.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                return Attempt::Sent(status.as_u16());
            }
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = resp.text().await.unwrap_or_default();
            let snippet: String = body.chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect();
            let error = hook.scrub(&format!("HTTP {}: {}", status.as_u16(), snippet.trim()));
            if status.is_server_error() || status.as_u16() == 429 {
                Attempt::Retry(error, after)
            } else {
                Attempt::Fatal(error)
            }
        }
        // the URL is left out: a webhook's may carry a token in its query
        Err(e) => Attempt::Retry(hook.scrub(&error_chain(&e.without_url())), None),
    }
}

/// An error and its causes, on one line (reqwest's own message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The wait after failed attempt `attempt` (1-based): the base doubled each time, capped, plus
/// up to a fifth at random so that many nodes do not retry in step.
pub fn backoff(hook: &Hook, attempt: u32) -> Duration {
    let exp = hook.backoff.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
    let capped = exp.min(hook.max_backoff);
    capped + capped.mul_f64(rand::random::<f64>() * 0.2)
}

/// One line of the dead-letter file.
fn record(hook: &Hook, event: &PurgeEvent, attempts: u32, error: &str) -> serde_json::Value {
    let now = SystemTime::now();
    serde_json::json!({
        "time": rfc3339(now),
        "hook": hook.name,
        "kind": hook.kind(),
        "event": event.event,
        "handle": event.handle,
        "keys": event.keys,
        "attempts": attempts,
        "error": error,
    })
}

/// `DATA_DIR/purge-dead-letter.jsonl`: appended to, one JSON object a line, never read back by
/// the server (an operator replays it).
struct DeadLetter {
    path: PathBuf,
    lock: Mutex<()>,
}

impl DeadLetter {
    fn write(&self, line: &serde_json::Value) {
        use std::io::Write;
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = line.to_string();
        text.push('\n');
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the purge dead-letter file");
        }
    }

    /// On the blocking pool when there is a runtime (a file write must not stall a worker).
    fn write_off_thread(self: &Arc<Self>, line: serde_json::Value) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let me = self.clone();
                rt.spawn_blocking(move || me.write(&line));
            }
            Err(_) => self.write(&line),
        }
    }
}

/// UTC calendar fields of a time: year, month, day, hour, minute, second.
pub(crate) fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32)
}

/// `2026-12-05T17:04:40Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}
