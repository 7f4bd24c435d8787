//! Who may ask: the request's app (its key, or the app that stored the file it reads), its
//! credentials, and how a private answer is cached.

use super::{Caching, FileAnswer, Origin};
use crate::config::PrivateCaching;
use crate::error::Result;
use crate::security::{Access, Caller, Credentials, Grant};
use crate::url::SourceSpec;

impl Origin {
    /// The app that stored the first stored file `source` reads; only looked up when apps are
    /// configured (an open server has no owners).
    pub(super) async fn owner(&self, source: &SourceSpec) -> Option<String> {
        if !self.security.has_apps() {
            return None;
        }
        let mut visit = vec![source];
        while let Some(s) = visit.pop() {
            match s {
                SourceSpec::Handle { handle } => return self.store.meta(handle).await.ok()?.app.clone(),
                SourceSpec::List { items } => visit.extend(items.iter().rev()),
                _ => {}
            }
        }
        None
    }

    /// Authorize a call on stored files or sources: `owner_of` names what the request reads.
    pub(super) async fn authorize(
        &self,
        apikey: Option<&str>,
        creds: Option<&Credentials>,
        owner_of: Option<&SourceSpec>,
        access: &Access<'_>,
    ) -> Result<Grant> {
        let owner = match owner_of {
            Some(source) => self.owner(source).await,
            None => None,
        };
        let key_required = !matches!(owner_of, Some(SourceSpec::Handle { .. }));
        let caller = Caller { apikey, creds, owner: owner.as_deref(), key_required };
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
    file
}
