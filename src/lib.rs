//! Refract: an image transformation origin for CDNs, speaking Filestack-style URLs.
//!
//! One request flows one way: `http` (a typed request) → `origin`, the service layer: `url`
//! (grammar) → `plan` (typed, validated) → `security` → `cache` (hit: answer) → `pool`
//! (admission, single-flight) → `source`/`store` → `pipeline` → `cache` → back to `http` (CDN
//! headers). `docs/ARCHITECTURE.md` has the module table and the dependency graph.

pub mod cache;
pub mod config;
pub mod error;
pub mod format;
pub mod handle;
pub mod http;
pub mod mediatype;
pub mod metrics;
pub mod origin;
pub mod pipeline;
pub mod plan;
pub mod pool;
pub mod purge;
pub mod schema;
pub mod security;
pub mod source;
pub mod store;
pub mod url;
