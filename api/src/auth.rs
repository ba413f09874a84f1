//! Bearer tokens: HS256 JWTs with subject, role, organisation and expiry.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a person is in the service; decides what they may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "snake_case")]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE", remote = "domain::access::Role")]
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

/// A secret that never prints.
#[derive(Clone, serde::Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Whether keys may be read from `url`: https, or http on loopback (tests,
/// a provider beside the service).
pub fn safe_url(url: &str) -> bool {
    url.starts_with("https://")
        || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                url.strip_prefix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            })
}

/// The claims a token carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub org: String,
    pub exp: i64,
    pub iat: i64,
    /// Not valid before this time (Unix seconds), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl Claims {
    /// Claims issued now, for `ttl_seconds`.
    fn from_now(subject: Uuid, role: Role, org: &str, ttl_seconds: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: subject,
            role,
            org: org.to_string(),
            iat: now,
            exp: now + ttl_seconds,
            nbf: None,
        }
    }
}

/// A local token's claims with its optional SMART context: the scopes the
/// FHIR facade reads and the patient `patient/` scopes reach.
#[derive(Debug, Serialize, Deserialize)]
struct ScopedClaims {
    #[serde(flatten)]
    claims: Claims,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    patient: Option<Uuid>,
}

/// Largest accepted bearer token, in bytes.
pub const TOKEN_MAX_BYTES: usize = 8 * 1024;

/// Longest accepted organisation name, in bytes.
pub const ORGANISATION_MAX_BYTES: usize = 100;

/// Default tolerance for clocks that disagree, applied to `nbf` and `iat`
/// (never to `exp`).
pub const DEFAULT_LEEWAY_SECONDS: i64 = 30;

/// Whether `org` can name an organisation: 1-100 bytes, no control or
/// invisible formatting characters, no surrounding white space.
pub fn valid_organisation(org: &str) -> bool {
    !org.is_empty()
        && org.len() <= ORGANISATION_MAX_BYTES
        && org.trim() == org
        && !org.chars().any(|c| {
            c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
        })
}

/// The authenticated person behind a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub subject: Uuid,
    pub role: Role,
    pub organisation: String,
    /// When the token runs out (Unix seconds): a live subscription ends then.
    pub expires_at: i64,
    /// The token's SMART scopes (its `scope` claim), which the FHIR facade
    /// reads; `None` when it carries none (GraphQL does not use them).
    pub scope: Option<String>,
    /// The patient the token names as its SMART launch context (`patient`
    /// claim), which `patient/` scopes reach.
    pub patient: Option<Uuid>,
}

impl Caller {
    /// A caller that no bearer token names: the service acting for someone
    /// (an erasure falling due, a concern raised again, a simulated
    /// person), with no SMART scopes or patient context.
    pub fn acting(subject: Uuid, role: Role, organisation: &str, expires_at: i64) -> Caller {
        Caller {
            subject,
            role,
            organisation: organisation.to_string(),
            expires_at,
            scope: None,
            patient: None,
        }
    }

    /// The caller as the domain's rules see them: a person within their
    /// organisation, in a role.
    pub fn actor(&self) -> domain::access::Actor {
        domain::access::Actor {
            person: self.subject,
            role: self.role.into(),
            organisation: self.organisation.clone(),
        }
    }

    /// The metadata of every event the caller causes in request
    /// `request_id`: who, in which role and organisation, and by which
    /// command (empty for events that are not a command's, such as usage).
    pub fn metadata(&self, request_id: &str, command_id: &str) -> projections::EventMetadata {
        projections::EventMetadata {
            actor_id: self.subject.to_string(),
            actor_role: self.role.as_str().to_string(),
            organisation: self.organisation.clone(),
            request_id: request_id.to_string(),
            command_id: command_id.to_string(),
            idempotency_key: None,
            idempotency_fingerprint: None,
        }
    }

    /// Whether the caller's role carries `duty` (`domain::access::has_duty`).
    pub fn may(&self, duty: domain::access::Duty) -> bool {
        domain::access::has_duty(&self.actor(), duty)
    }

    /// The side of care the caller takes part on, if any
    /// (`domain::access::care_side`).
    pub fn care_side(&self) -> Option<domain::care::Side> {
        domain::access::care_side(&self.actor())
    }
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
    #[error("the bearer token is not valid yet")]
    NotYetValid,
    #[error("the bearer token is larger than 8 KiB")]
    TooLarge,
    #[error("the bearer token carries SMART scopes: it is for the FHIR API at /fhir/R4 only")]
    FhirOnly,
}

/// Signs and verifies tokens with one key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    leeway_seconds: i64,
}

impl TokenKeys {
    /// Keys from the configured secret.
    pub fn new(secret: &Secret) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }

    /// The same keys, tolerating clocks `leeway` apart for `nbf` and `iat`.
    pub fn with_leeway(mut self, leeway: std::time::Duration) -> Self {
        self.leeway_seconds = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Mints a token valid for `ttl_seconds` from now.
    pub fn mint(
        &self,
        subject: Uuid,
        role: Role,
        org: &str,
        ttl_seconds: i64,
    ) -> Result<String, AuthError> {
        self.sign(&Claims::from_now(subject, role, org, ttl_seconds))
    }

    /// A token as [`TokenKeys::mint`]'s, carrying SMART scopes for the FHIR
    /// facade (`scope`, space-separated, as `patient/Goal.rs user/*.rs`) and
    /// optionally a patient context (what `patient/` scopes reach). Such a
    /// token is for the facade only.
    pub fn mint_scoped(
        &self,
        subject: Uuid,
        role: Role,
        org: &str,
        ttl_seconds: i64,
        scope: &str,
        patient: Option<Uuid>,
    ) -> Result<String, AuthError> {
        let claims = ScopedClaims {
            claims: Claims::from_now(subject, role, org, ttl_seconds),
            scope: Some(scope.to_string()),
            patient,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| AuthError::Invalid)
    }

    /// Signs any set of claims (the command line and tests use it).
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|_| AuthError::Invalid)
    }

    /// Verifies an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        self.verify(bearer_token(header)?)
    }

    /// Verifies a bearer token ([`bearer_token`] of a header).
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        // The signature and the claims' types are checked by jsonwebtoken;
        // the times here, so that `exp` is strict and only `nbf` and `iat`
        // get the leeway.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        let ScopedClaims {
            claims,
            scope,
            patient,
        } = decode::<ScopedClaims>(token, &self.decoding, &validation)
            .map_err(|_| AuthError::Invalid)?
            .claims;
        check_claims(&claims, chrono::Utc::now().timestamp(), self.leeway_seconds)?;
        Ok(Caller {
            subject: claims.sub,
            role: claims.role,
            organisation: claims.org,
            expires_at: claims.exp,
            scope,
            patient,
        })
    }
}

/// The token of an `Authorization: Bearer` header value, at most
/// [`TOKEN_MAX_BYTES`].
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(AuthError::Invalid)?
        .trim();
    if token.len() > TOKEN_MAX_BYTES {
        return Err(AuthError::TooLarge);
    }
    Ok(token)
}

/// The checks on a signed token's claims at time `now` (Unix seconds).
pub fn check_claims(claims: &Claims, now: i64, leeway: i64) -> Result<(), AuthError> {
    if claims.exp <= now {
        return Err(AuthError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(AuthError::NotYetValid);
    }
    // A token issued in the future, or living longer than it was issued for.
    if claims.iat > now.saturating_add(leeway) || claims.iat > claims.exp {
        return Err(AuthError::Invalid);
    }
    if claims.sub.is_nil() || !valid_organisation(&claims.org) {
        return Err(AuthError::Invalid);
    }
    Ok(())
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

    fn claims(now: i64) -> Claims {
        Claims {
            sub: Uuid::from_u128(7),
            role: Role::ServiceUser,
            org: "clinic-a".into(),
            exp: now + 60,
            iat: now,
            nbf: None,
        }
    }

    #[test]
    fn times_are_strict_for_exp_and_lenient_for_nbf_and_iat() {
        let now = 1_800_000_000;
        assert_eq!(check_claims(&claims(now), now, 30), Ok(()));
        let at_now = Claims {
            exp: now,
            ..claims(now)
        };
        assert_eq!(check_claims(&at_now, now, 30), Err(AuthError::Expired));
        let early = Claims {
            nbf: Some(now + 31),
            ..claims(now)
        };
        assert_eq!(check_claims(&early, now, 30), Err(AuthError::NotYetValid));
        let nearly = Claims {
            nbf: Some(now + 30),
            ..claims(now)
        };
        assert_eq!(check_claims(&nearly, now, 30), Ok(()));
        let future = Claims {
            iat: now + 365 * 24 * 3600,
            exp: now + 366 * 24 * 3600,
            ..claims(now)
        };
        assert_eq!(check_claims(&future, now, 30), Err(AuthError::Invalid));
        let skewed = Claims {
            iat: now + 20,
            ..claims(now)
        };
        assert_eq!(check_claims(&skewed, now, 30), Ok(()));
    }

    #[test]
    fn subjects_and_organisations_must_be_well_formed() {
        let now = 1_800_000_000;
        for org in ["", " a", "a\u{0}b", "a\nb", "a\u{202E}b", &"x".repeat(101)] {
            let c = Claims {
                org: org.to_string(),
                ..claims(now)
            };
            assert_eq!(
                check_claims(&c, now, 30),
                Err(AuthError::Invalid),
                "{org:?}"
            );
        }
        for org in ["clinic-a", "Klinikk Øst", &"x".repeat(100)] {
            let c = Claims {
                org: org.to_string(),
                ..claims(now)
            };
            assert_eq!(check_claims(&c, now, 30), Ok(()), "{org:?}");
        }
        let nil = Claims {
            sub: Uuid::nil(),
            ..claims(now)
        };
        assert_eq!(check_claims(&nil, now, 30), Err(AuthError::Invalid));
    }

    #[test]
    fn oversized_and_non_uuid_tokens_are_refused() {
        let k = keys("a");
        let big = format!("Bearer {}", "a".repeat(TOKEN_MAX_BYTES + 1));
        assert_eq!(k.verify_header(Some(&big)), Err(AuthError::TooLarge));
        let mut raw = serde_json::to_value(claims(chrono::Utc::now().timestamp())).expect("json");
        raw["sub"] = serde_json::json!("not-a-uuid");
        let token = encode(&Header::new(Algorithm::HS256), &raw, &k.encoding).expect("sign");
        assert_eq!(
            k.verify_header(Some(&format!("Bearer {token}"))),
            Err(AuthError::Invalid)
        );
    }
}
