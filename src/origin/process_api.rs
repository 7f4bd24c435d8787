//! `POST /process`: the JSON form of the processing API (filestack-python's `upload_url`,
//! filestack-js's `storeURL`): `{apikey, sources, tasks: [{name, params}], upload_tags}`. It is
//! turned into the same typed request a processing URL becomes, so every rule applies alike.

use super::{Answer, Method, Origin, ProcessRequest, QueryParams};
use crate::error::{Error, Result};
use crate::url::{ParsedUrl, RawOption, RawTask, SecurityParams, SourceSpec, Value};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct ProcessCall {
    pub apikey: Option<String>,
    pub sources: Vec<serde_json::Value>,
    #[serde(default)]
    pub tasks: Vec<JsonTask>,
}

#[derive(Debug, Deserialize)]
pub struct JsonTask {
    pub name: String,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl Origin {
    pub async fn process_json(&self, call: ProcessCall) -> Result<Answer> {
        let url = parsed_url(call)?;
        let parsed = self.compile(url, QueryParams::default())?;
        let request = ProcessRequest {
            parsed: Arc::new(parsed),
            method: Method::Post,
            accepts: Default::default(),
            client_gone: None,
            bearer: None,
            if_none_match: Vec::new(),
            hints: Default::default(),
        };
        self.process(request).await
    }
}

fn parsed_url(call: ProcessCall) -> Result<ParsedUrl> {
    let mut sources = call.sources.iter().map(source).collect::<Result<Vec<_>>>()?;
    let source = match sources.len() {
        0 => return Err(Error::bad("`sources` is empty")),
        1 => sources.remove(0),
        _ => SourceSpec::List { items: sources },
    };
    let mut security = None;
    let mut tasks = Vec::new();
    for task in call.tasks {
        if task.name == "security" {
            let text = |k: &str| task.params.get(k).and_then(|v| v.as_str()).map(str::to_string);
            if let (Some(policy), Some(signature)) = (text("policy"), text("signature")) {
                security = Some(SecurityParams { policy, signature });
            }
            continue;
        }
        let options = task.params.iter().map(|(k, v)| RawOption { key: k.clone(), value: Some(value(v)) }).collect();
        tasks.push(RawTask { name: task.name, options });
    }
    Ok(ParsedUrl { apikey: call.apikey, debug: false, tasks, security, source, query_consumed: false })
}

/// A URL or handle, or filestack-js's `{source, headers}` (the headers are not forwarded).
fn source(v: &serde_json::Value) -> Result<SourceSpec> {
    let text = v.as_str().or_else(|| v.get("source").and_then(|s| s.as_str()));
    let text = text.ok_or_else(|| Error::bad("each of `sources` must be a URL or a handle"))?;
    if text.starts_with("http://") || text.starts_with("https://") {
        return Ok(SourceSpec::parse_external(text)?.0);
    }
    SourceSpec::file_ref(text)
}

fn value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::String(s) => Value::scalar(s.clone()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(value).collect()),
        other => Value::scalar(other.to_string()),
    }
}
