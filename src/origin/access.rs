//! Who may ask: the request's app (its key, or the app that stored the file it reads), its
//! credentials, and how a private answer is cached.

use super::{Caching, FileAnswer, Origin};
use crate::config::PrivateCaching;
use crate::error::Result;
use crate::security::{Access, Caller, Credentials, Grant};
use crate::url::SourceSpec;

impl Origin {
    /// The apps that stored the files `access` reads (its handles: sources, list items, overlays),
    /// each once; only looked up when apps are configured (an open server has no owners).
    pub(super) async fn owners(&self, access: &Access<'_>) -> Vec<String> {
        let mut owners = Vec::new();
        if !self.security.has_apps() {
            return owners;
        }
        for handle in &access.handles {
            if let Some(app) = self.store.meta(handle).await.ok().and_then(|m| m.app.clone()) {
                if !owners.contains(&app) {
                    owners.push(app);
                }
            }
        }
        owners
    }

    /// Authorize a call: `reads` says what the request reads (a handle needs no API key; other
    /// sources, aliases and uploads do, as on Filestack).
    pub(super) async fn authorize(
        &self,
        apikey: Option<&str>,
        creds: Option<&Credentials>,
        reads: Option<&SourceSpec>,
        access: &Access<'_>,
    ) -> Result<Grant> {
        let owners = self.owners(access).await;
        let key_required = !matches!(reads, Some(SourceSpec::Handle { .. }));
        let caller = Caller { apikey, creds, owners: &owners, key_required };
        self.security.authorize(&caller, access)
    }
}

/// The first credentials given: in the URL, then the query, then the `Authorization` header.
pub fn first_credentials(options: [Option<Credentials>; 3]) -> Option<Credentials> {
    options.into_iter().flatten().next()
}

/// A private answer (its app requires signatures) is revalidated at every use, or kept to the
/// user's browser; `cache=false` stays `no-store`.
pub(super) fn private(mut file: FileAnswer, grant: &Grant) -> FileAnswer {
    file.caching = match (file.caching, grant.private) {
        (Caching::NoStore, _) | (_, None) => file.caching,
        (_, Some(PrivateCaching::NoCache)) => Caching::Revalidate,
        (_, Some(PrivateCaching::Private)) => Caching::Private,
    };
    // one purge by tag clears everything an app serves
    if let (Some(app), false) = (&grant.app, file.surrogate_keys.is_empty()) {
        file.surrogate_keys.push(format!("app-{app}"));
    }
    file
}
