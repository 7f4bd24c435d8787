//! The typed plan: each raw task checked against the schema (names, aliases, types, ranges),
//! with one canonical string that keys the cache and is shown by `debug`.

pub mod color;
/// The task table lives in a leaf module the grammar shares (`crate::schema`).
pub use crate::schema;
pub mod audio;
mod control;
pub mod image;
pub use control::{Content, Fallback, Store};

use crate::error::{Error, Result};
use crate::url::{ParsedUrl, RawOption, RawTask, Value};
pub use color::Rgba;
use schema::{Kind, Support, TaskSpec};
use serde_json::json;

/// A validated option value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Num(f64),
    Bool(bool),
    /// Enum words (lower-cased) and free text.
    Str(String),
    Color(Rgba, String),
    List(Vec<Param>),
}

impl Param {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Param::Int(i) => Some(*i as f64),
            Param::Num(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Param::Int(i) => Some(*i),
            Param::Num(n) => Some(n.round() as i64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Param::Str(s) => Some(s),
            _ => None,
        }
    }

    fn canonical(&self) -> String {
        match self {
            Param::Int(i) => i.to_string(),
            Param::Num(n) => n.to_string(),
            Param::Bool(b) => b.to_string(),
            Param::Str(s) if s.contains([',', '/', ':', '"', '[', ']', ' ']) => format!("{s:?}"),
            Param::Str(s) => s.clone(),
            Param::Color(c, _) => c.to_string(),
            Param::List(items) => format!("[{}]", items.iter().map(Param::canonical).collect::<Vec<_>>().join(",")),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Param::Int(i) => json!(i),
            Param::Num(n) => json!(n),
            Param::Bool(b) => json!(b),
            Param::Str(s) => json!(s),
            Param::Color(_, text) => json!(text),
            Param::List(items) => serde_json::Value::Array(items.iter().map(Param::to_json).collect()),
        }
    }
}

/// One validated task: its schema entry and its options by long name, sorted.
#[derive(Debug, Clone)]
pub struct Task {
    pub spec: &'static TaskSpec,
    /// The options the URL gave, sorted by name.
    pub params: Vec<(&'static str, Param)>,
    /// The schema's defaults for the options it left out.
    pub defaults: Vec<(&'static str, Param)>,
}

impl Task {
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn get(&self, key: &str) -> Option<&Param> {
        self.params.iter().chain(&self.defaults).find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Given options and defaults alike, so that `blur` and `blur=amount:2` are one form.
    pub(crate) fn canonical(&self) -> String {
        if self.params.is_empty() && self.defaults.is_empty() {
            return self.name().to_string();
        }
        let mut all: Vec<&(&str, Param)> = self.params.iter().chain(&self.defaults).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        let opts: Vec<String> = all.iter().map(|(k, v)| format!("{k}:{}", v.canonical())).collect();
        format!("{}={}", self.name(), opts.join(","))
    }

    fn to_json(&self) -> serde_json::Value {
        let params: serde_json::Map<String, serde_json::Value> =
            self.params.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect();
        json!({ "name": self.name(), "params": params })
    }
}

/// How long a derivative may be cached, from the `cache` task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    Default,
    Disabled,
    Expiry(u64),
}

/// The whole request, typed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tasks: Vec<Task>,
    pub cache: CachePolicy,
}

impl Plan {
    /// Validate every task of a parsed URL.
    pub fn build(url: &ParsedUrl) -> Result<Plan> {
        let mut tasks = Vec::with_capacity(url.tasks.len());
        let mut cache = CachePolicy::Default;
        for raw in &url.tasks {
            let task = validate(raw)?;
            if task.name() == "cache" {
                cache = cache_policy(&task);
            }
            tasks.push(task);
        }
        Ok(Plan { tasks, cache })
    }

    /// Tasks that change the output (everything but control tasks).
    pub fn processing(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(|t| t.spec.support != Support::Control)
    }

    /// The first task Refract cannot run, if any.
    pub fn unimplemented(&self) -> Option<&Task> {
        self.tasks.iter().find(|t| t.spec.support == Support::NotImplemented)
    }

    /// Aliases expanded, options sorted, values normalised; task order kept; control tasks
    /// (`cache`, `security`, `debug`) left out: they do not change the bytes.
    pub fn canonical(&self) -> String {
        self.processing().map(Task::canonical).collect::<Vec<_>>().join("/")
    }

    pub fn chain_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.tasks.iter().map(Task::to_json).collect())
    }
}

fn cache_policy(task: &Task) -> CachePolicy {
    if task.get("enabled") == Some(&Param::Bool(false)) {
        return CachePolicy::Disabled;
    }
    match task.get("expiry") {
        Some(Param::Int(0)) => CachePolicy::Disabled,
        Some(Param::Int(n)) => CachePolicy::Expiry(*n as u64),
        _ => CachePolicy::Default,
    }
}

/// Check one raw task against its schema entry.
pub fn validate(raw: &RawTask) -> Result<Task> {
    let spec =
        schema::lookup(&raw.name).ok_or_else(|| Error::bad_task(&raw.name, format!("unknown task `{}`", raw.name)))?;
    let name = spec.name;
    if raw.options.is_empty() && !spec.bare {
        return Err(Error::bad_task(name, format!("task `{name}` needs options; allowed: {}", spec.option_names())));
    }
    let mut params: Vec<(&'static str, Param)> = Vec::with_capacity(raw.options.len());
    for opt in &raw.options {
        let (key, param) = validate_option(spec, opt)?;
        if params.iter().any(|(k, _)| *k == key) {
            return Err(Error::bad_option(name, key, format!("option `{key}` given twice for `{name}`")));
        }
        params.push((key, param));
    }
    params.sort_by(|a, b| a.0.cmp(b.0));
    let defaults = defaults(spec, &params)?;
    let task = Task { spec, params, defaults };
    check_required(&task)?;
    Ok(task)
}

/// Options the URL left out take the schema's default, parsed as if the URL had said it.
pub(crate) fn defaults(spec: &'static TaskSpec, given: &[(&'static str, Param)]) -> Result<Vec<(&'static str, Param)>> {
    let mut filled = Vec::new();
    for opt in spec.options {
        let Some(default) = opt.default else { continue };
        if !given.iter().any(|(k, _)| *k == opt.name) {
            // list defaults (`spread:[1,10]`) are written as in a URL
            let value =
                if default.starts_with('[') { crate::url::parse_value(default)? } else { Value::scalar(default) };
            let raw = RawOption { key: opt.name.to_string(), value: Some(value) };
            filled.push(validate_option(spec, &raw)?);
        }
    }
    Ok(filled)
}

fn validate_option(spec: &'static TaskSpec, opt: &RawOption) -> Result<(&'static str, Param)> {
    let name = spec.name;
    // Bare words inside a task: `cache=false` / `cache=f`, `cache=true`.
    if opt.value.is_none() {
        if name == "cache" {
            return match opt.key.to_ascii_lowercase().as_str() {
                "false" | "f" => Ok(("enabled", Param::Bool(false))),
                "true" | "t" => Ok(("enabled", Param::Bool(true))),
                other => Err(Error::bad_option(name, other, "`cache` takes false or expiry:SECONDS")),
            };
        }
        return Err(Error::bad_option(
            name,
            &opt.key,
            format!("option `{}` of `{name}` needs a value (`{}:VALUE`)", opt.key, opt.key),
        ));
    }
    let spec_opt = spec.option(&opt.key).ok_or_else(|| {
        Error::bad_option(
            name,
            &opt.key,
            format!("invalid parameter `{}` for `{name}` task; allowed: {}", opt.key, spec.option_names()),
        )
    })?;
    let value = opt.value.as_ref().expect("checked above");
    let param = convert(spec_opt.kind, value).map_err(|why| {
        Error::bad_option(name, spec_opt.name, format!("invalid value for `{name}.{}`: {why}", spec_opt.name))
    })?;
    // `expiry:max` is a spelling of one year
    let param = match (name, &param) {
        ("cache", Param::Str(s)) if s == "max" => Param::Int(31_536_000),
        _ => param,
    };
    Ok((spec_opt.name, param))
}

fn check_required(task: &Task) -> Result<()> {
    let need = |opt: &str| -> Result<()> {
        match task.get(opt) {
            Some(_) => Ok(()),
            None => Err(Error::bad_option(task.name(), opt, format!("`{}` needs `{opt}`", task.name()))),
        }
    };
    match task.name() {
        "resize" if task.get("width").is_none() && task.get("height").is_none() => {
            Err(Error::bad_task("resize", "`resize` needs width (w) or height (h)"))
        }
        "crop" => need("dim"),
        "watermark" => need("file"),
        "quality" => need("value"),
        "partial_blur" | "partial_pixelate" => need("objects"),
        "collage" => need("files").and(need("width")).and(need("height")),
        _ => Ok(()),
    }
}

type Why = String;

fn scalar(v: &Value) -> Result<&str, Why> {
    match v {
        Value::Scalar { text, .. } => Ok(text.trim()),
        Value::List(_) => Err("expected a single value, not a list".into()),
    }
}

fn list(v: &Value) -> Result<&[Value], Why> {
    match v {
        Value::List(items) => Ok(items),
        Value::Scalar { text, .. } => Err(format!("expected a list like [a,b], got `{text}`")),
    }
}

fn int_in(text: &str, lo: i64, hi: i64) -> Result<i64, Why> {
    let n: i64 = text.parse().map_err(|_| format!("`{text}` is not an integer"))?;
    if n < lo || n > hi {
        return Err(format!("{n} is out of range {lo}…{hi}"));
    }
    Ok(n)
}

fn num_in(text: &str, lo: f64, hi: f64) -> Result<Param, Why> {
    let n: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if !n.is_finite() || n < lo || n > hi {
        return Err(format!("{text} is out of range {lo}…{hi}"));
    }
    Ok(if n.fract() == 0.0 { Param::Int(n as i64) } else { Param::Num(n) })
}

fn keyword(text: &str, allowed: &[&str]) -> Result<Param, Why> {
    let lower = text.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(Param::Str(lower))
    } else {
        Err(format!("`{text}` is not one of {}", allowed.join("|")))
    }
}

const VERTICAL: &[&str] = &["top", "middle", "bottom"];
const HORIZONTAL: &[&str] = &["left", "center", "right"];
const POSITIONS: &[&str] = &["top", "middle", "bottom", "left", "center", "right", "faces"];

fn convert(kind: Kind, v: &Value) -> Result<Param, Why> {
    Ok(match kind {
        Kind::Int(lo, hi) => Param::Int(int_in(scalar(v)?, lo, hi)?),
        Kind::Num(lo, hi) => num_in(scalar(v)?, lo, hi)?,
        Kind::Bool => match scalar(v)?.to_ascii_lowercase().as_str() {
            "true" => Param::Bool(true),
            "false" => Param::Bool(false),
            other => return Err(format!("`{other}` is not true|false")),
        },
        Kind::Enum(allowed) => keyword(scalar(v)?, allowed)?,
        Kind::IntOr(lo, hi, words) => int_or(scalar(v)?, lo, hi, words)?,
        Kind::NumOr(lo, hi, words) => match keyword(scalar(v)?, words) {
            Ok(word) => word,
            Err(_) => num_in(scalar(v)?, lo, hi).map_err(|e| format!("{e} (or one of {})", words.join("|")))?,
        },
        Kind::Color => colour(scalar(v)?)?,
        Kind::Position => position(v)?,
        Kind::Str => text(scalar(v)?)?,
        Kind::Faces => faces(v)?,
        Kind::Rect => rect(v)?,
        Kind::Pair(lo, hi) => pair(v, lo, hi)?,
        Kind::Rects => rects(v)?,
        Kind::List => text_list(v)?,
        Kind::Time => time(scalar(v)?)?,
    })
}

/// An integer in range, or one of the keywords (`deg:exif`, `radius:max`).
fn int_or(text: &str, lo: i64, hi: i64, words: &[&str]) -> Result<Param, Why> {
    match keyword(text, words) {
        Ok(word) => Ok(word),
        Err(_) => Ok(Param::Int(int_in(text, lo, hi).map_err(|e| format!("{e} (or one of {})", words.join("|")))?)),
    }
}

fn colour(text: &str) -> Result<Param, Why> {
    let (rgba, norm) = color::parse(text)
        .ok_or_else(|| format!("`{text}` is not a colour (3, 6 or 8 hex digits without #, or a CSS colour name)"))?;
    Ok(Param::Color(rgba, norm))
}

/// `top`… or `[vertical,horizontal]`.
fn position(v: &Value) -> Result<Param, Why> {
    match v {
        Value::Scalar { text, .. } => keyword(text.trim(), POSITIONS),
        Value::List(items) if items.len() == 2 => {
            Ok(Param::List(vec![keyword(scalar(&items[0])?, VERTICAL)?, keyword(scalar(&items[1])?, HORIZONTAL)?]))
        }
        Value::List(_) => Err("a position list is [vertical,horizontal], e.g. [top,left]".into()),
    }
}

fn text(text: &str) -> Result<Param, Why> {
    if text.is_empty() || text.len() > 2048 {
        return Err("expected 1…2048 characters".into());
    }
    Ok(Param::Str(text.to_string()))
}

/// `all`, an integer 1…1000, or a list of such integers.
fn faces(v: &Value) -> Result<Param, Why> {
    Ok(match v {
        Value::Scalar { text, .. } if text.trim().eq_ignore_ascii_case("all") => Param::Str("all".into()),
        Value::Scalar { text, .. } => Param::Int(int_in(text.trim(), 1, 1000)?),
        Value::List(items) => {
            Param::List(items.iter().map(|i| Ok(Param::Int(int_in(scalar(i)?, 1, 1000)?))).collect::<Result<_, Why>>()?)
        }
    })
}

fn pair(v: &Value, lo: i64, hi: i64) -> Result<Param, Why> {
    let items = list(v)?;
    if items.len() != 2 {
        return Err(format!("expected [a,b] with two integers, got {} items", items.len()));
    }
    Ok(Param::List(items.iter().map(|i| Ok(Param::Int(int_in(scalar(i)?, lo, hi)?))).collect::<Result<_, Why>>()?))
}

fn rects(v: &Value) -> Result<Param, Why> {
    let items = list(v)?;
    if items.is_empty() || items.len() > 50 {
        return Err("expected 1…50 rectangles [[x,y,w,h],…]".into());
    }
    Ok(Param::List(items.iter().map(rect).collect::<Result<_, Why>>()?))
}

/// A list of free-text items (a single value is a list of one).
fn text_list(v: &Value) -> Result<Param, Why> {
    let items = match v {
        Value::List(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    if items.len() > 100 {
        return Err("at most 100 items".into());
    }
    Ok(Param::List(items.iter().map(|i| Ok(Param::Str(scalar(i)?.to_string()))).collect::<Result<_, Why>>()?))
}

/// `HH[:MM[:SS]]`.
/// `HH[:MM[:SS[.ffffff]]]` (fractions of a second are Refract's, for sample-exact trims): kept
/// as written, read by [`seconds`].
fn time(text: &str) -> Result<Param, Why> {
    let parts: Vec<&str> = text.split(':').collect();
    let last = parts.len() - 1;
    let digits = |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    let ok = parts.len() <= 3
        && parts.iter().enumerate().all(|(i, p)| match p.split_once('.') {
            Some((whole, frac)) if i == last && last == 2 => {
                digits(whole) && !frac.is_empty() && frac.len() <= 6 && frac.bytes().all(|b| b.is_ascii_digit())
            }
            _ => digits(p),
        });
    if !ok {
        return Err(format!("`{text}` is not a time HH[:MM[:SS[.fff]]]"));
    }
    Ok(Param::Str(text.to_string()))
}

/// A time option's value in seconds (a value [`time`] accepted).
pub fn seconds(text: &str) -> f64 {
    text.split(':').zip([3600.0, 60.0, 1.0]).map(|(p, unit)| p.parse::<f64>().unwrap_or(0.0) * unit).sum()
}

fn rect(v: &Value) -> Result<Param, Why> {
    let items = list(v)?;
    if items.len() != 4 {
        return Err(format!("expected [x,y,width,height], got {} items", items.len()));
    }
    let mut out = Vec::with_capacity(4);
    for (i, item) in items.iter().enumerate() {
        let lo = if i < 2 { 0 } else { 1 };
        out.push(Param::Int(int_in(scalar(item)?, lo, 100_000)?));
    }
    Ok(Param::List(out))
}

#[cfg(test)]
mod tests;
