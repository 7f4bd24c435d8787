//! What a request proves: a policy with its HMAC-SHA256 signature (in the URL, the query or an
//! `Authorization: Bearer POLICY.SIGNATURE` header), or an HS256 JWT whose claims are a policy.
//! Verified against each of an app's secrets (two during a rotation).

use super::policy::Policy;
use crate::error::{Error, Result};
use crate::url::SecurityParams;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    /// A base64 policy and the hex HMAC-SHA256 of it, as transmitted.
    Signed(SecurityParams),
    /// A compact HS256 JWT (`header.claims.signature`).
    Jwt(String),
}

impl From<SecurityParams> for Credentials {
    fn from(p: SecurityParams) -> Credentials {
        Credentials::Signed(p)
    }
}

impl Credentials {
    /// An `Authorization` header value: `Bearer POLICY.SIGNATURE` or `Bearer JWT`. Another
    /// scheme (a proxy's `Basic`) is none of Refract's business: no credentials. A `Bearer`
    /// value that is neither form is refused (401), never ignored: the client meant to prove
    /// something.
    pub fn from_authorization(value: &str) -> Result<Option<Credentials>> {
        let malformed =
            || Error::Unauthorized("Authorization must be `Bearer POLICY.SIGNATURE` or `Bearer JWT` (HS256)".into());
        let value = value.trim();
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(None);
        }
        let token = token.trim();
        match token.split('.').collect::<Vec<_>>()[..] {
            [policy, signature] if !policy.is_empty() && !signature.is_empty() => {
                Ok(Some(Credentials::Signed(SecurityParams { policy: policy.into(), signature: signature.into() })))
            }
            [_, _, _] => Ok(Some(Credentials::Jwt(token.to_string()))),
            _ => Err(malformed()),
        }
    }

    /// The policy these credentials carry, if one of `secrets` signed it.
    pub(super) fn verify(&self, secrets: &[Vec<u8>]) -> Result<Policy> {
        match self {
            Credentials::Signed(p) => verify_signed(p, secrets),
            Credentials::Jwt(token) => verify_jwt(token, secrets),
        }
    }
}

fn verify_signed(creds: &SecurityParams, secrets: &[Vec<u8>]) -> Result<Policy> {
    let sig = hex::decode(creds.signature.trim()).map_err(|_| Error::Forbidden("signature is not hex".into()))?;
    let signed_by = |secret: &Vec<u8>| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
        mac.update(creds.policy.as_bytes());
        mac.verify_slice(&sig).is_ok()
    };
    if !secrets.iter().any(signed_by) {
        return Err(Error::Forbidden("signature does not match the policy".into()));
    }
    let json =
        crate::url::b64_decode(&creds.policy).map_err(|e| Error::Forbidden(format!("policy is not base64: {e}")))?;
    Policy::parse(&json)
}

fn verify_jwt(token: &str, secrets: &[Vec<u8>]) -> Result<Policy> {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    // HS256 only (never `none`, never an algorithm the token picks); `exp` is the policy's
    // expiry and is checked with the other constraints
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let mut last = None;
    for secret in secrets {
        match decode::<serde_json::Value>(token, &DecodingKey::from_secret(secret), &validation) {
            Ok(data) => return Policy::parse(data.claims.to_string().as_bytes()),
            Err(e) => last = Some(e),
        }
    }
    let why = match last.as_ref().map(|e| e.kind()) {
        Some(jsonwebtoken::errors::ErrorKind::InvalidSignature) | None => "the JWT's signature does not match".into(),
        Some(other) => format!("the JWT is not valid: {other:?}"),
    };
    Err(Error::Forbidden(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_parse() {
        let signed = Credentials::from_authorization("Bearer eyJleHBpcnkiOjF9.abcd").unwrap().unwrap();
        assert!(matches!(signed, Credentials::Signed(p) if p.policy == "eyJleHBpcnkiOjF9" && p.signature == "abcd"));
        assert!(matches!(Credentials::from_authorization("bearer a.b.c").unwrap(), Some(Credentials::Jwt(_))));
        // a proxy's own scheme is not ours
        assert_eq!(Credentials::from_authorization("Basic dXNlcjpwYXNz").unwrap(), None);
        for bad in ["Bearer", "Bearer ", "Bearer nodot", "Bearer a.b.c.d", "Bearer .x"] {
            assert!(matches!(Credentials::from_authorization(bad), Err(Error::Unauthorized(_))), "{bad}");
        }
    }

    #[test]
    fn jwts_verify_with_either_secret_and_hs256_only() {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let claims = serde_json::json!({ "exp": 4_102_444_800u64, "call": ["read"] });
        let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"second-secret-0123")).unwrap();
        let secrets = vec![b"first-secret-01234".to_vec(), b"second-secret-0123".to_vec()];
        assert!(verify_jwt(&token, &secrets).is_ok());
        assert!(verify_jwt(&token, &secrets[..1]).is_err());
        // HS512 with the right secret: refused, the algorithm is ours to choose
        let hs512 = Header::new(jsonwebtoken::Algorithm::HS512);
        let token = encode(&hs512, &claims, &EncodingKey::from_secret(b"first-secret-01234")).unwrap();
        assert!(verify_jwt(&token, &secrets).is_err());
        // `alg: none`, unsigned
        use base64::Engine;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims.to_string()));
        assert!(verify_jwt(&none, &secrets).is_err());
    }
}
