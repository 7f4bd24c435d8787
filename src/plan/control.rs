//! Control tasks, typed: they change how a request is handled (where a result is stored, what
//! answers when the chain fails, how the file is named), not the pixels. The service layer reads
//! these instead of looking tasks up by name.

use super::{Param, Plan, Task};
use crate::error::{Error, Result};
use crate::url::SourceSpec;

/// `store=…`: keep the chain's result (or the source) as a new stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub filename: Option<String>,
    pub container: Option<String>,
    pub path: Option<String>,
    /// Where Filestack would store (`s3`, `gcs`, …): checked against the app's storage.
    pub location: Option<String>,
    /// The task's options in canonical form (for idempotence tokens).
    pub canonical: String,
    /// A `video_convert`'s result: answered with Filestack's conversion JSON.
    pub conversion: bool,
}

/// `fallback=handle:H,cache:N`: the file answered when the source or the chain fails: a stored
/// file's handle or `src://alias/path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    pub file: SourceSpec,
    /// How long the fallback answer may be cached (default one hour).
    pub max_age: u64,
}

/// `content=filename:F,type:attachment`: how the answer is named and shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Content {
    pub filename: Option<String>,
    pub attachment: bool,
}

fn text(task: &Task, key: &str) -> Option<String> {
    task.get(key).and_then(Param::as_str).map(str::to_string)
}

impl Plan {
    fn control(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name() == name)
    }

    /// Where the result is stored: the `store` task, or a `video_convert` (whose result is
    /// stored and answered with Filestack's conversion JSON).
    pub fn store(&self) -> Option<Store> {
        let conversion = super::audio::conversion_store(self);
        let Some(task) = self.control("store") else { return conversion };
        Some(Store {
            filename: text(task, "filename"),
            container: text(task, "container"),
            path: text(task, "path"),
            location: text(task, "location"),
            canonical: task.canonical(),
            conversion: conversion.is_some(),
        })
    }

    /// The fallback, if any; a fallback that is not a stored file's handle is a 400.
    pub fn fallback(&self) -> Result<Option<Fallback>> {
        let Some(task) = self.control("fallback") else { return Ok(None) };
        let Ok(file) = SourceSpec::file_ref(&text(task, "handle").unwrap_or_default()) else {
            let why = "the fallback must be a stored file's handle or src://alias/path";
            return Err(Error::bad_option("fallback", "handle", why));
        };
        let max_age = task.get("cache").and_then(Param::as_i64).map(|n| n as u64).unwrap_or(3600);
        Ok(Some(Fallback { file, max_age }))
    }

    /// `zip`: the sources as one ZIP archive.
    pub fn zip(&self) -> bool {
        self.control("zip").is_some()
    }

    pub fn content(&self) -> Content {
        let Some(task) = self.control("content") else { return Content::default() };
        Content { filename: text(task, "filename"), attachment: text(task, "type").as_deref() == Some("attachment") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(path: &str) -> Plan {
        Plan::build(&crate::url::parse(path, None).unwrap()).unwrap()
    }

    #[test]
    fn control_tasks_are_typed() {
        let p = plan("/store=filename:a.jpg,container:c/fallback=handle:AAAAAAAAAAAAAAAAAAAA,cache:60/content=type:attachment/resize=w:10/BBBBBBBBBBBBBBBBBBBB");
        let s = p.store().unwrap();
        assert_eq!((s.filename.as_deref(), s.container.as_deref()), (Some("a.jpg"), Some("c")));
        assert!(s.canonical.contains("a.jpg"));
        assert_eq!(p.fallback().unwrap(), Some(Fallback { file: SourceSpec::handle("A".repeat(20)), max_age: 60 }));
        assert!(p.content().attachment);
        assert_eq!(plan("/resize=w:10/BBBBBBBBBBBBBBBBBBBB").store(), None);
    }
}
