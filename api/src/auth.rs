//! Bearer tokens: HS256 JWTs with subject, role, organisation and expiry.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::settings::Secret;

/// What a person is in the service; decides what they may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "snake_case")]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// A person in recovery who owns a portal.
    ServiceUser,
    /// A nurse, psychologist, social worker, peer worker, ... in a care organisation.
    Provider,
    /// Looks after the organisation's forum.
    Moderator,
    /// Member of an approved study; sees pseudonymous aggregates only.
    Researcher,
    /// Privacy officer: sees the access trail, never the data.
    Auditor,
    /// Runs the organisation's tenancy.
    Admin,
}

impl Role {
    /// The role as written in tokens and event metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ServiceUser => "service_user",
            Role::Provider => "provider",
            Role::Moderator => "moderator",
            Role::Researcher => "researcher",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| format!("unknown role `{s}`"))
    }
}

/// The claims a token carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub org: String,
    pub exp: i64,
    pub iat: i64,
}

/// The authenticated person behind a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub subject: Uuid,
    pub role: Role,
    pub organisation: String,
    /// When the token runs out (Unix seconds): a live subscription ends then.
    pub expires_at: i64,
}

/// Why a token was refused. The client only learns that it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was sent")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
    #[error("the bearer token has expired")]
    Expired,
}

/// Signs and verifies tokens with one key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    /// Keys from the configured secret.
    pub fn new(secret: &Secret) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
        }
    }

    /// Mints a token valid for `ttl_seconds` from now.
    pub fn mint(
        &self,
        subject: Uuid,
        role: Role,
        org: &str,
        ttl_seconds: i64,
    ) -> Result<String, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: subject,
            role,
            org: org.to_string(),
            iat: now,
            exp: now + ttl_seconds,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| AuthError::Invalid)
    }

    /// Verifies an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Invalid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            decode::<Claims>(token.trim(), &self.decoding, &validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                }
            })?;
        let claims = data.claims;
        if claims.org.trim().is_empty() || claims.org.len() > 100 {
            return Err(AuthError::Invalid);
        }
        Ok(Caller {
            subject: claims.sub,
            role: claims.role,
            organisation: claims.org,
            expires_at: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> TokenKeys {
        TokenKeys::new(&Secret::new(s.repeat(40)))
    }

    #[test]
    fn a_minted_token_verifies() {
        let k = keys("a");
        let token = k
            .mint(Uuid::from_u128(7), Role::ServiceUser, "org-1", 60)
            .expect("mint");
        let caller = k
            .verify_header(Some(&format!("Bearer {token}")))
            .expect("valid");
        assert_eq!(caller.subject, Uuid::from_u128(7));
        assert_eq!(caller.role, Role::ServiceUser);
        assert_eq!(caller.organisation, "org-1");
    }

    #[test]
    fn forged_expired_and_missing_tokens_are_refused() {
        let token = keys("a")
            .mint(Uuid::from_u128(7), Role::Admin, "o", 60)
            .expect("mint");
        assert_eq!(
            keys("b").verify_header(Some(&format!("Bearer {token}"))),
            Err(AuthError::Invalid)
        );
        let old = keys("a")
            .mint(Uuid::from_u128(7), Role::Admin, "o", -5)
            .expect("mint");
        assert_eq!(
            keys("a").verify_header(Some(&format!("Bearer {old}"))),
            Err(AuthError::Expired)
        );
        assert_eq!(keys("a").verify_header(None), Err(AuthError::Missing));
        assert_eq!(
            keys("a").verify_header(Some("Basic abc")),
            Err(AuthError::Invalid)
        );
    }
}
