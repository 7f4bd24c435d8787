//! Client hints: `resize=width:auto` and `resize=…,dpr:auto` take their values from the
//! request's hint headers, snapped (widths to the configured ladder, DPR to 1/2/3, never past the
//! stored source's own width), so one URL has a bounded number of cache entries. The resolved
//! request is the explicit URL it stands for: same plan, same cache key. What was consulted is
//! named in `Vary`.

use super::{Origin, Parsed};
use crate::config::HintDefault;
use crate::error::Result;
use crate::url::{ParsedUrl, RawOption, RawTask, SourceSpec, Value};
use std::sync::Arc;

/// What Refract asks browsers to send (`Accept-CH`).
pub const ACCEPT_CH: &str = "Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width";

/// The hint headers of a request: `(name, value)` for each one sent with a number.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub values: Vec<(&'static str, f64)>,
}

/// Each hint: its current name, then its legacy one (both are read, in this order).
const WIDTH: [&str; 2] = ["Sec-CH-Width", "Width"];
const DPR: [&str; 2] = ["Sec-CH-DPR", "DPR"];
const VIEWPORT: [&str; 2] = ["Sec-CH-Viewport-Width", "Viewport-Width"];

/// Every header name a hint may come in.
pub const HINT_HEADERS: [&str; 6] = [WIDTH[0], WIDTH[1], DPR[0], DPR[1], VIEWPORT[0], VIEWPORT[1]];

impl Hints {
    /// Read one hint: the first of its names that was sent. Every name looked at is recorded
    /// (a cache must tell a request without it from one with it).
    fn read(&self, names: [&'static str; 2], consulted: &mut Vec<&'static str>) -> Option<f64> {
        for name in names {
            consulted.push(name);
            if let Some((_, v)) = self.values.iter().find(|(n, _)| *n == name) {
                return Some(*v);
            }
        }
        None
    }
}

/// Tasks that say how the result is written, after which an added `resize` would come too late.
const TRAILING: [&str; 4] = ["output", "quality", "compress", "cache"];

/// Whether the URL has `auto` options to resolve before its job can be compiled.
pub(super) fn wants_hints(url: &ParsedUrl) -> bool {
    auto_options(url) != (false, false)
}

/// Which options of the URL's `resize` tasks ask for hints.
fn auto_options(url: &ParsedUrl) -> (bool, bool) {
    let is_auto =
        |v: &Option<Value>| matches!(v, Some(Value::Scalar { text, .. }) if text.eq_ignore_ascii_case("auto"));
    let options = url.tasks.iter().filter(|t| t.name == "resize").flat_map(|t| &t.options);
    let (mut width, mut dpr) = (false, false);
    for o in options.filter(|o| is_auto(&o.value)) {
        width |= matches!(o.key.as_str(), "width" | "w");
        dpr |= o.key == "dpr";
    }
    (width, dpr)
}

/// DPR snapped to 1, 2 or 3.
pub fn snap_dpr(dpr: f64) -> u32 {
    if dpr.is_finite() {
        dpr.round().clamp(1.0, 3.0) as u32
    } else {
        1
    }
}

/// The smallest ladder step at least `width` (the largest step beyond it).
pub fn snap_width(ladder: &[u32], width: f64) -> u32 {
    let last = ladder.last().copied().unwrap_or(1);
    ladder.iter().copied().find(|&step| f64::from(step) >= width).unwrap_or(last)
}

impl Origin {
    /// The request with its `auto` options resolved, and the hint headers consulted.
    pub(super) async fn resolve_hints(
        &self,
        parsed: Arc<Parsed>,
        hints: &Hints,
    ) -> Result<(Arc<Parsed>, Vec<&'static str>)> {
        if parsed.url.debug {
            return Ok((parsed, Vec::new()));
        }
        let mut url = self.with_app_defaults(&parsed.url).await;
        let (auto_width, auto_dpr) = auto_options(url.as_ref().unwrap_or(&parsed.url));
        if !(auto_width || auto_dpr) {
            return Ok((parsed, Vec::new()));
        }
        let mut url = url.take().unwrap_or_else(|| parsed.url.clone());
        let mut consulted = Vec::new();
        let width = match auto_width {
            true => Some(self.hinted_width(&parsed.url.source, hints, &mut consulted).await),
            false => None,
        };
        // a hinted width is in device pixels already: its DPR is 1
        let dpr = match (auto_dpr, width) {
            (true, None) => snap_dpr(hints.read(DPR, &mut consulted).unwrap_or(1.0)),
            _ => 1,
        };
        for option in url.tasks.iter_mut().filter(|t| t.name == "resize").flat_map(|t| &mut t.options) {
            let text = match option.key.as_str() {
                "width" | "w" => width.map(|w| w.to_string()),
                "dpr" => Some(dpr.to_string()),
                _ => None,
            };
            if let (Some(text), Some(Value::Scalar { text: old, .. })) = (text, &option.value) {
                if old.eq_ignore_ascii_case("auto") {
                    option.value = Some(Value::scalar(text));
                }
            }
        }
        consulted.dedup();
        Ok((Arc::new(self.compile(url, parsed.query.clone())?), consulted))
    }

    /// The URL with its app's hint defaults written in as `auto` options (`None`: nothing to
    /// add). `dpr`: every `resize` without a `dpr` gets `dpr:auto`. `width`: a stored image asked
    /// without a `resize` (nor a `store`) gets `resize=width:auto` before its output tasks.
    async fn with_app_defaults(&self, url: &ParsedUrl) -> Option<ParsedUrl> {
        let key = url.apikey.as_deref()?;
        let app = self.config.apps.iter().find(|a| a.api_key == key)?;
        let mut out = url.clone();
        if app.client_hints.contains(&HintDefault::Dpr) {
            for task in out.tasks.iter_mut().filter(|t| t.name == "resize") {
                if !task.options.iter().any(|o| o.key == "dpr") {
                    task.options.push(RawOption { key: "dpr".into(), value: Some(Value::scalar("auto")) });
                }
            }
        }
        let bare = !url.tasks.iter().any(|t| matches!(t.name.as_str(), "resize" | "store"));
        if app.client_hints.contains(&HintDefault::Width) && bare && self.is_stored_image(&url.source).await {
            let at = out.tasks.iter().position(|t| TRAILING.contains(&t.name.as_str())).unwrap_or(out.tasks.len());
            let option = RawOption { key: "width".into(), value: Some(Value::scalar("auto")) };
            out.tasks.insert(at, RawTask { name: "resize".into(), options: vec![option] });
        }
        (out.tasks != url.tasks).then_some(out)
    }

    async fn is_stored_image(&self, source: &SourceSpec) -> bool {
        let SourceSpec::Handle { handle } = source else { return false };
        self.store.meta(handle).await.is_ok_and(|m| m.mimetype.starts_with("image/") && m.width.is_some())
    }

    /// The width hint (device pixels), else the viewport's times the DPR, else the default;
    /// snapped to the ladder and capped at a stored source's own width.
    async fn hinted_width(&self, source: &SourceSpec, hints: &Hints, consulted: &mut Vec<&'static str>) -> u32 {
        let wanted = match hints.read(WIDTH, consulted) {
            Some(w) => w,
            None => match hints.read(VIEWPORT, consulted) {
                Some(v) => v * f64::from(snap_dpr(hints.read(DPR, consulted).unwrap_or(1.0))),
                None => f64::from(self.config.hint_default_width),
            },
        };
        let snapped = snap_width(&self.config.width_ladder, wanted);
        let stored = match source {
            SourceSpec::Handle { handle } => self.store.meta(handle).await.ok().and_then(|m| m.width),
            _ => None,
        };
        stored.map_or(snapped, |w| snapped.min(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_snap_up_the_ladder_and_dprs_to_whole_steps() {
        let ladder = [160, 320, 640, 1280];
        let snapped: Vec<u32> =
            [1.0, 160.0, 161.0, 639.5, 640.0, 5000.0].iter().map(|&w| snap_width(&ladder, w)).collect();
        assert_eq!(snapped, [160, 160, 320, 640, 640, 1280]);
        let dprs: Vec<u32> = [0.5, 1.0, 1.4, 1.5, 2.625, 9.0, f64::NAN].iter().map(|&d| snap_dpr(d)).collect();
        assert_eq!(dprs, [1, 1, 1, 2, 3, 3, 1]);
    }

    #[test]
    fn a_hint_records_every_name_looked_at() {
        let hints = Hints { values: vec![("Width", 500.0)] };
        let mut consulted = Vec::new();
        assert_eq!(hints.read(WIDTH, &mut consulted), Some(500.0));
        assert_eq!(consulted, ["Sec-CH-Width", "Width"]);
        let mut consulted = Vec::new();
        assert_eq!(hints.read(DPR, &mut consulted), None);
        assert_eq!(consulted, ["Sec-CH-DPR", "DPR"]);
    }

    #[test]
    fn auto_options_are_found_in_resize_tasks_only() {
        let url = |p: &str| crate::url::parse(p, None).unwrap();
        assert_eq!(auto_options(&url("/resize=w:auto/AAAAAAAAAAAAAAAAAAAA")), (true, false));
        assert_eq!(auto_options(&url("/resize=width:300,dpr:auto/AAAAAAAAAAAAAAAAAAAA")), (false, true));
        assert_eq!(auto_options(&url("/resize=width:300/AAAAAAAAAAAAAAAAAAAA")), (false, false));
    }
}
