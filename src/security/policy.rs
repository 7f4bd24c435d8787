//! A Filestack policy, once its signature is verified: `expiry`, `call`, `handle`, `url`, `path`,
//! `container`, `maxSize`, `minSize`, each checked against what the request does.

use super::{Access, Call, Target};
use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(super) struct Policy {
    /// Unix seconds; a JWT's `exp` is read as the same thing.
    #[serde(alias = "exp")]
    expiry: f64,
    #[serde(default)]
    call: Option<CallList>,
    #[serde(default)]
    handle: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// A regex the storage path of a store or write must match.
    #[serde(default)]
    path: Option<String>,
    /// A regex the storage container of a store or write must match.
    #[serde(default)]
    container: Option<String>,
    #[serde(default, rename = "maxSize")]
    max_size: Option<u64>,
    #[serde(default, rename = "minSize")]
    min_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CallList {
    One(String),
    Many(Vec<String>),
}

impl Policy {
    pub(super) fn parse(json: &[u8]) -> Result<Policy> {
        serde_json::from_slice(json).map_err(|e| Error::Forbidden(format!("policy is not valid JSON: {e}")))
    }

    /// Every constraint of the policy against the request; the first one broken is the reason.
    pub(super) fn allows(&self, access: &Access) -> Result<()> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        if self.expiry <= now {
            return Err(Error::Forbidden("policy has expired".into()));
        }
        if let Some(calls) = &self.call {
            let listed: Vec<&str> = match calls {
                CallList::One(c) => vec![c.as_str()],
                CallList::Many(cs) => cs.iter().map(String::as_str).collect(),
            };
            if !access.call.names().iter().any(|n| listed.contains(n)) {
                return Err(Error::Forbidden(format!("policy does not allow the `{}` call", access.call.name())));
            }
        }
        if let Some(h) = &self.handle {
            // a handle-bound policy allows that handle and nothing else: no URL, no alias, and
            // no call that touches no handle at all (a new upload)
            let others = access.handles.iter().any(|x| x != h) || !access.urls.is_empty() || !access.aliases.is_empty();
            if others || access.handles.is_empty() {
                return Err(Error::Forbidden(format!("policy is limited to handle `{h}`")));
            }
        }
        if let Some(pattern) = &self.url {
            if access.urls.iter().any(|u| !whole_match(pattern, u)) {
                return Err(Error::Forbidden("policy does not allow this source URL".into()));
            }
        }
        let writes = matches!(access.call, Call::Store | Call::Write);
        self.check_target(&access.target, writes)
    }

    /// The limits on where a file is written and how large it is (the size when known). For a
    /// write, a path or container left out is the empty one: leaving it out must not skip the rule.
    fn check_target<'a>(&self, target: &Target<'a>, writes: bool) -> Result<()> {
        let refuse = |why: String| Err(Error::Forbidden(why));
        let given = |v: Option<&'a str>| if writes { Some(v.unwrap_or("")) } else { v };
        if let (Some(p), Some(path)) = (&self.path, given(target.path)) {
            if !whole_match(p, path) {
                return refuse(format!("policy does not allow the storage path `{path}`"));
            }
        }
        if let (Some(c), Some(container)) = (&self.container, given(target.container)) {
            if !whole_match(c, container) {
                return refuse(format!("policy does not allow the container `{container}`"));
            }
        }
        match target.size {
            Some(n) if self.max_size.is_some_and(|max| n > max) => {
                refuse(format!("the file is {n} bytes, over the policy's maxSize"))
            }
            Some(n) if self.min_size.is_some_and(|min| n < min) => {
                refuse(format!("the file is {n} bytes, under the policy's minSize"))
            }
            _ => Ok(()),
        }
    }
}

/// Whether `pattern` (a policy regex) matches all of `text`; an invalid regex matches nothing.
fn whole_match(pattern: &str, text: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(text))
}
