//! The Filestack URL grammar: splits a raw request path into the API key, `debug`, the task
//! segments (name + raw options) and the source. Knows syntax only; what a task means and which
//! values are valid is `plan`'s business.
//!
//! Tokenising works on the path exactly as it arrived on the wire: quotes (`"` or `%22`) and
//! brackets (`[`/`%5B`, `]`/`%5D`) make their content opaque, so `/` and `,` inside them do not
//! split. Percent-decoding happens per value, after splitting (so an encoded `%2C` stays part of a
//! value), and `+` never becomes a space.

mod source;
mod tokens;
pub use tokens::b64_decode;

use crate::error::{Error, Result};
use crate::schema;
pub use source::SourceSpec;
use tokens::{decode, split_top, strip_quotes, Token};

/// A raw option value: a scalar (quoted or bare, percent-decoded) or a list of values.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { text: String, quoted: bool },
    List(Vec<Value>),
}

impl Value {
    pub fn scalar(text: impl Into<String>) -> Self {
        Value::Scalar { text: text.into(), quoted: false }
    }
}

/// `key:value`, or a bare word (`cache=false`) when `value` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOption {
    pub key: String,
    pub value: Option<Value>,
}

/// One task segment as written: its name and its options in URL order.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTask {
    pub name: String,
    pub options: Vec<RawOption>,
}

/// Policy and signature as transmitted (the signature is checked over these exact bytes).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SecurityParams {
    pub policy: String,
    pub signature: String,
}

/// Everything the path says, before any task is interpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedUrl {
    pub apikey: Option<String>,
    pub debug: bool,
    pub tasks: Vec<RawTask>,
    pub security: Option<SecurityParams>,
    pub source: SourceSpec,
    /// True when the HTTP query string was re-attached to an external source URL, so none of it
    /// belongs to Refract.
    pub query_consumed: bool,
}

/// Parse a raw (still percent-encoded) path and its raw query string.
pub fn parse(raw_path: &str, raw_query: Option<&str>) -> Result<ParsedUrl> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if path.is_empty() {
        return Err(Error::bad("empty path: expected [APIKEY/]TASKS/SOURCE"));
    }
    let tokens = split_top(path, b'/');
    let mut i = 0;
    let mut url = ParsedUrl {
        apikey: None,
        debug: false,
        tasks: Vec::new(),
        security: None,
        source: SourceSpec::handle(String::new()),
        query_consumed: false,
    };
    let last = tokens.len() - 1;
    if tokens[i].text == "debug" && i < last {
        url.debug = true;
        i += 1;
    }
    if i < last && is_apikey(tokens[i].text) {
        url.apikey = Some(tokens[i].text.to_string());
        i += 1;
    }
    if tokens[i].text == "debug" && i < last {
        url.debug = true;
        i += 1;
    }
    if tokens[i].text == "b64" && i < last {
        return parse_b64(url, &tokens[i + 1..], path);
    }
    while i < last {
        let tok = &tokens[i];
        if source::starts_source(tok.text) {
            break;
        }
        // filestack-go writes the security segment before `b64/…`
        if tok.text == "b64" {
            return parse_b64(url, &tokens[i + 1..], path);
        }
        push_task_segment(&mut url, tok.text)?;
        i += 1;
    }
    if i == last && looks_like_task(tokens[i].text) && !source::starts_source(tokens[i].text) {
        return Err(Error::bad(format!(
            "missing source: `{}` is a task; a URL ends with a handle, an external URL or src://alias/path",
            tokens[i].text
        )));
    }
    let (source, consumed) = source::parse(&path[tokens[i].start..], raw_query)?;
    url.source = source;
    url.query_consumed = consumed;
    Ok(url)
}

/// Filestack API keys are alphanumeric; a known task name is never a key.
fn is_apikey(tok: &str) -> bool {
    !tok.is_empty()
        && tok.len() <= 64
        && tok.bytes().all(|b| b.is_ascii_alphanumeric())
        && schema::lookup(tok).is_none()
        && tok != "b64"
}

fn task_name(tok: &str) -> &str {
    tok.split('=').next().unwrap_or(tok)
}

fn looks_like_task(tok: &str) -> bool {
    tok.contains('=') || schema::lookup(task_name(tok)).is_some()
}

/// Parse one `/`-separated segment. Java sends the whole chain as one segment with `%2F`
/// between tasks, so a segment that still holds an encoded slash is split again.
fn push_task_segment(url: &mut ParsedUrl, seg: &str) -> Result<()> {
    if seg.contains("%2F") || seg.contains("%2f") {
        let decoded = seg.replace("%2F", "/").replace("%2f", "/");
        for tok in split_top(&decoded, b'/') {
            push_task(url, parse_task(tok.text)?)?;
        }
        return Ok(());
    }
    push_task(url, parse_task(seg)?)
}

fn push_task(url: &mut ParsedUrl, task: RawTask) -> Result<()> {
    match task.name.as_str() {
        "security" => url.security = Some(security_params(&task)?),
        "debug" => url.debug = true,
        _ => url.tasks.push(task),
    }
    Ok(())
}

fn security_params(task: &RawTask) -> Result<SecurityParams> {
    let mut policy = None;
    let mut signature = None;
    for opt in &task.options {
        let text = match &opt.value {
            Some(Value::Scalar { text, .. }) => text.clone(),
            _ => return Err(Error::bad_option("security", &opt.key, "expected a text value")),
        };
        let slot = match opt.key.as_str() {
            "p" | "policy" => &mut policy,
            "s" | "signature" => &mut signature,
            other => {
                return Err(Error::bad_option(
                    "security",
                    other,
                    format!("invalid parameter `{other}` for `security` task; allowed: policy (p), signature (s)"),
                ))
            }
        };
        if slot.replace(text).is_some() {
            return Err(Error::bad_option("security", &opt.key, "option given twice for `security`"));
        }
    }
    match (policy, signature) {
        (Some(policy), Some(signature)) => {
            let params = SecurityParams { policy, signature };
            params.check_syntax()?;
            Ok(params)
        }
        _ => Err(Error::bad_task("security", "security needs both policy (p) and signature (s)")),
    }
}

impl SecurityParams {
    /// The shape of a policy and signature, checked even when no secret is configured, so a
    /// mangled security segment is a clear 400 rather than silently ignored.
    pub fn check_syntax(&self) -> Result<()> {
        let sig = self.signature.trim();
        if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::bad_option("security", "signature", "signature must be 64 hex digits (HMAC-SHA256)"));
        }
        let json = b64_decode(&self.policy)
            .map_err(|e| Error::bad_option("security", "policy", format!("policy is not base64: {e}")))?;
        let value: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|_| Error::bad_option("security", "policy", "policy is not base64 of a JSON object"))?;
        if !value.get("expiry").is_some_and(serde_json::Value::is_number) {
            return Err(Error::bad_option("security", "policy", "policy needs a numeric `expiry`"));
        }
        Ok(())
    }
}

/// `name` or `name=opt:val,flag,opt:[a,b]`.
pub fn parse_task(tok: &str) -> Result<RawTask> {
    let (raw_name, raw_opts) = match tok.find('=') {
        Some(eq) => (&tok[..eq], Some(&tok[eq + 1..])),
        None => (tok, None),
    };
    let name = decode(raw_name)?;
    if name.is_empty() {
        return Err(Error::bad(format!("empty task name in segment `{tok}`")));
    }
    if schema::lookup(&name).is_none() {
        return Err(Error::bad_task(&name, format!("unknown task `{name}`")));
    }
    let mut options = Vec::new();
    if let Some(raw_opts) = raw_opts {
        if raw_opts.is_empty() {
            return Err(Error::bad_task(&name, format!("`{name}=` has no options")));
        }
        for raw in split_top(raw_opts, b',') {
            options.push(parse_option(&name, raw.text)?);
        }
    }
    Ok(RawTask { name, options })
}

fn parse_option(task: &str, raw: &str) -> Result<RawOption> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::bad_task(task, format!("empty option in `{task}`")));
    }
    match tokens::find_top(raw, b':') {
        Some(colon) => {
            let key = decode(&raw[..colon])?.trim().to_string();
            if key.is_empty() {
                return Err(Error::bad_task(task, format!("option without a name in `{task}`: `{raw}`")));
            }
            let value = parse_value(&raw[colon + 1..]).map_err(|e| with_context(e, task, &key))?;
            Ok(RawOption { key, value: Some(value) })
        }
        None => Ok(RawOption { key: decode(raw)?.trim().to_string(), value: None }),
    }
}

fn with_context(e: Error, task: &str, option: &str) -> Error {
    match e {
        Error::BadRequest { message, .. } => Error::bad_option(task, option, message),
        other => other,
    }
}

/// A scalar or a (nested) list. A value whose brackets arrive encoded (`%5B10%2C20%5D`, as PHP
/// sends arrays) is decoded as a whole first.
pub fn parse_value(raw: &str) -> Result<Value> {
    let raw = tokens::trim_spaces(raw);
    if tokens::starts_with_ci(raw, "%5B") {
        let decoded = decode(raw)?;
        return parse_list(&decoded);
    }
    if raw.starts_with('[') {
        return parse_list(raw);
    }
    if raw.is_empty() {
        return Err(Error::bad("empty value"));
    }
    if let Some(inner) = strip_quotes(raw)? {
        return Ok(Value::Scalar { text: decode(inner)?, quoted: true });
    }
    let text = decode(raw)?;
    if text.contains(['"', '[', ']']) {
        return Err(Error::bad(format!("unbalanced quote or bracket in `{text}`")));
    }
    Ok(Value::Scalar { text, quoted: false })
}

fn parse_list(raw: &str) -> Result<Value> {
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| Error::bad(format!("unbalanced brackets in `{raw}`")))?;
    if tokens::nesting_depth(inner) > 8 {
        return Err(Error::bad("lists nested deeper than 8 levels"));
    }
    if inner.trim().is_empty() {
        return Ok(Value::List(Vec::new()));
    }
    split_top(inner, b',').into_iter().map(|t| parse_value(t.text)).collect::<Result<_>>().map(Value::List)
}

/// `b64/<base64url JSON task list>/b64://<base64url source>` (filestack-js and Go).
fn parse_b64(mut url: ParsedUrl, rest: &[Token], path: &str) -> Result<ParsedUrl> {
    if rest.len() < 2 {
        return Err(Error::bad("b64 mode needs b64/<tasks>/b64://<source>"));
    }
    let json = tokens::b64_decode(rest[0].text).map_err(|m| Error::bad(format!("b64 task list: {m}")))?;
    let list: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| Error::bad(format!("b64 task list is not JSON: {e}")))?;
    let items = list.as_array().ok_or_else(|| Error::bad("b64 task list must be a JSON array"))?;
    for item in items {
        if let Some(task) = task_from_json(item)? {
            push_task(&mut url, task)?;
        }
    }
    let (source, consumed) = source::parse(&path[rest[1].start..], None)?;
    url.source = source;
    url.query_consumed = consumed;
    Ok(url)
}

fn task_from_json(item: &serde_json::Value) -> Result<Option<RawTask>> {
    let field = |k: &str, alt: &str| item.get(k).or_else(|| item.get(alt));
    let name = field("name", "Name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| Error::bad("b64 task without a name"))?
        .to_string();
    if schema::lookup(&name).is_none() {
        return Err(Error::bad_task(&name, format!("unknown task `{name}`")));
    }
    let mut options = Vec::new();
    match field("params", "Params") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(map)) => {
            for (key, v) in map {
                if let Some(value) = value_from_json(v) {
                    options.push(RawOption { key: key.clone(), value: Some(value) });
                }
            }
        }
        Some(serde_json::Value::Bool(true)) => {}
        // filestack-js: `false` drops a task, except `cache(false)`, which means `cache=false`
        Some(serde_json::Value::Bool(false)) if name == "cache" => {
            options.push(RawOption { key: "false".into(), value: None })
        }
        Some(serde_json::Value::Bool(false)) => return Ok(None),
        Some(_) => return Err(Error::bad_task(&name, "b64 task params must be an object")),
    }
    Ok(Some(RawTask { name, options }))
}

fn value_from_json(v: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::String(s) => Value::Scalar { text: s.clone(), quoted: true },
        J::Bool(b) => Value::scalar(b.to_string()),
        J::Number(n) => Value::scalar(n.to_string()),
        J::Array(a) => Value::List(a.iter().filter_map(value_from_json).collect()),
        J::Object(_) => Value::scalar(v.to_string()),
    })
}

#[cfg(test)]
mod tests;
