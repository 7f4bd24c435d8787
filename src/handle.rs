//! The handle of a stored file: a leaf type every layer may use (the URL grammar recognises one,
//! the store keys files by it, the pipeline names overlays with it).

use std::fmt;

/// Letters, digits, `_` and `-`, at most 128 bytes: safe as a path component and in a header.
pub fn is_valid(h: &str) -> bool {
    !h.is_empty() && h.len() <= 128 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A handle known to be well-formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    pub fn parse(h: &str) -> Option<Handle> {
        is_valid(h).then(|| Handle(h.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Handle {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_are_path_and_header_safe() {
        assert!(super::is_valid("Xq3_abc-DEF"));
        for bad in ["", "../etc", "a/b", "a b", "é", "a\r\nb", &"x".repeat(129)] {
            assert!(!super::is_valid(bad), "{bad:?}");
        }
    }
}
