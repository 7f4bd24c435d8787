//! Refract: an image transformation origin for CDNs, speaking Filestack-style URLs.
//!
//! One request flows one way: `http` → `url` (grammar) → `plan` (typed, validated) →
//! `security` → `cache` (hit: answer) → `source` → `pipeline` (on the blocking `pool`) →
//! `cache` → `http` (CDN headers).

pub mod cache;
pub mod config;
pub mod error;
pub mod handle;
pub mod http;
pub mod mediatype;
pub mod metrics;
pub mod origin;
pub mod pipeline;
pub mod plan;
pub mod pool;
pub mod schema;
pub mod security;
pub mod source;
pub mod store;
pub mod url;
