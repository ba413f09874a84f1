//! Access tokens issued by each organisation's own OpenID provider (issue
//! 19, part 1), and [`Authenticator`]: which verifier a bearer token goes
//! to (a configured issuer's, or the local key's while `tokens.local`).
//!
//! Each configured issuer belongs to one organisation: a token's
//! organisation is the one of the issuer that signed it, never a claim its
//! holder could choose in another organisation's realm. Keys come from the
//! issuer's discovery document (`/.well-known/openid-configuration`) and its
//! JWKS, parsed by `jsonwebtoken`'s JWK support; they are cached and read
//! again after `keys_max_age`, or at once (at most every `refresh_min`) when
//! a token names a key id not in the cache: a rotated key is picked up
//! without a restart, a removed key stops working at the next read. An
//! issuer that is down leaves its cached keys working and refuses tokens of
//! keys it has not published to us (fail closed).
//!
//! RS256, ES256 and EdDSA; the claims are checked as strictly as the local
//! tokens' (`crate::auth::check_claims`), and `aud` must name the service.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{
    bearer_token, check_claims, safe_url, AuthError, Caller, Claims, Role, TokenKeys,
    TOKEN_MAX_BYTES,
};
use crate::settings::Settings;

/// Largest discovery document or key set read, in bytes.
const DOCUMENT_MAX_BYTES: usize = 1 << 20;
/// Most keys kept of one issuer.
const KEYS_MAX: usize = 100;

/// One organisation's identity provider.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The organisation its tokens are of.
    pub organisation: String,
    /// Its issuer identifier (`iss`), as its discovery document states it.
    pub issuer: String,
    /// The audience (`aud`) its tokens for this service carry.
    pub audience: String,
    /// Where the person's id is (a UUID): a claim's name, `sub` by default.
    pub subject_claim: String,
    /// Where the roles are: a claim's path, dotted (`realm_access.roles`
    /// for Keycloak's realm roles, `groups`), a text or a list of texts.
    pub role_claim: String,
    /// Which claim value means which role; a token whose values map to no
    /// role, or to more than one, is refused.
    pub roles: BTreeMap<String, Role>,
}

/// How often keys are read again.
#[derive(Debug, Clone, Copy)]
pub struct Refresh {
    /// Keys are read again once this old.
    pub keys_max_age: Duration,
    /// An unknown key id makes the keys be read again, at most this often.
    pub refresh_min: Duration,
    /// A fetch gives up after this long.
    pub timeout: Duration,
}

impl Default for Refresh {
    fn default() -> Self {
        Refresh {
            keys_max_age: Duration::from_secs(300),
            refresh_min: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
struct Key {
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct Keys {
    by_id: HashMap<String, Key>,
    /// What the discovery document last read says of the issuer's
    /// endpoints, for the FHIR facade's SMART configuration.
    endpoints: Option<Value>,
    /// When the keys were last read, or last tried.
    read_at: Option<Instant>,
}

struct State {
    issuer: Issuer,
    keys: RwLock<Keys>,
    /// One reading of the keys at a time.
    reading: tokio::sync::Mutex<()>,
}

/// The verifier of every configured issuer's tokens.
#[derive(Clone)]
pub struct Oidc {
    issuers: Arc<HashMap<String, Arc<State>>>,
    http: reqwest::Client,
    refresh: Refresh,
    leeway_seconds: i64,
}

/// Why keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("the document is larger than 1 MiB")]
    TooLarge,
    #[error("the document does not read: {0}")]
    Invalid(String),
}

/// The algorithm a key is for: its `alg`, or what its type and curve say.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    // A stated algorithm that is not a signing one we take (an encryption
    // key's RSA-OAEP, say) rules the key out.
    let stated = match jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
    };
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    match stated {
        Some(stated) if stated != implied => None,
        _ => Some(implied),
    }
}

/// The signing keys of a key set (`{"keys": [...]}`), by key id; a key
/// that does not read (a type or curve this service does not know) is
/// passed over, not the whole set.
fn keys_of(set: &Value) -> HashMap<String, Key> {
    let parsed: Vec<Jwk> = set
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    parsed
        .iter()
        .filter(|jwk| {
            matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            )
        })
        .filter_map(|jwk| {
            let id = jwk.common.key_id.clone()?;
            let algorithm = algorithm_of(jwk)?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((id, Key { algorithm, key }))
        })
        .take(KEYS_MAX)
        .collect()
}

/// The `iss` a token states, before anything of it is trusted: only to
/// choose whose keys check it.
fn stated_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(claims.get("iss")?.as_str()?.to_string())
}

/// The value at a dotted path of the claims.
fn at_path<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

impl Oidc {
    /// A verifier of `issuers`' tokens.
    pub fn new(
        issuers: Vec<Issuer>,
        refresh: Refresh,
        leeway_seconds: i64,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(refresh.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let issuers = issuers
            .into_iter()
            .map(|issuer| {
                (
                    issuer.issuer.clone(),
                    Arc::new(State {
                        issuer,
                        keys: RwLock::new(Keys::default()),
                        reading: tokio::sync::Mutex::new(()),
                    }),
                )
            })
            .collect();
        Ok(Oidc {
            issuers: Arc::new(issuers),
            http,
            refresh,
            leeway_seconds,
        })
    }

    /// Whether `token` names one of the configured issuers (else it is not
    /// this verifier's to check).
    pub fn knows(&self, token: &str) -> bool {
        stated_issuer(token).is_some_and(|iss| self.issuers.contains_key(&iss))
    }

    async fn get(&self, url: &str) -> Result<Value, FetchError> {
        let mut response = self.http.get(url).send().await?.error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() > DOCUMENT_MAX_BYTES {
                return Err(FetchError::TooLarge);
            }
        }
        serde_json::from_slice(&body).map_err(|e| FetchError::Invalid(e.to_string()))
    }

    /// Reads an issuer's keys: its discovery document, then its key set;
    /// with the document's endpoints.
    async fn read_keys(
        &self,
        issuer: &Issuer,
    ) -> Result<(HashMap<String, Key>, Value), FetchError> {
        let base = issuer.issuer.trim_end_matches('/');
        let discovery = self
            .get(&format!("{base}/.well-known/openid-configuration"))
            .await?;
        // OpenID Connect Discovery 1.0, 4.3: the document is the issuer's own.
        if discovery.get("issuer").and_then(Value::as_str) != Some(issuer.issuer.as_str()) {
            return Err(FetchError::Invalid(
                "the discovery document names another issuer".into(),
            ));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::Invalid("no jwks_uri".into()))?;
        if !safe_url(jwks_uri) {
            return Err(FetchError::Invalid(
                "jwks_uri must be https (or http on loopback)".into(),
            ));
        }
        let mut endpoints = serde_json::Map::new();
        endpoints.insert("issuer".into(), Value::String(issuer.issuer.clone()));
        // The URLs only: the facade states its own grant types and PKCE
        // methods (SMART allows S256 only).
        for name in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
            if let Some(Value::String(url)) = discovery.get(name) {
                if safe_url(url) {
                    endpoints.insert(name.into(), Value::String(url.clone()));
                }
            }
        }
        Ok((
            keys_of(&self.get(jwks_uri).await?),
            Value::Object(endpoints),
        ))
    }

    /// With one issuer configured, what its discovery document says of its
    /// endpoints (read now if never read, within the same bounds as keys).
    pub async fn only_issuers_endpoints(&self) -> Option<Value> {
        let [state] = self.issuers.values().collect::<Vec<_>>()[..] else {
            return None;
        };
        let known = |state: &State| state.keys.read().ok()?.endpoints.clone();
        if let Some(endpoints) = known(state) {
            return Some(endpoints);
        }
        // No key has that id: this reads the document when a reading is due.
        let _ = self.key(state, "").await;
        known(state)
    }

    /// The key `id` of an issuer: from the cache while it is fresh; else
    /// (and at most every `refresh_min`) read again. A failed reading keeps
    /// the keys read before.
    async fn key(&self, state: &State, id: &str) -> Option<Key> {
        let fresh_and_known = |keys: &Keys| {
            let fresh = keys
                .read_at
                .is_some_and(|at| at.elapsed() < self.refresh.keys_max_age);
            keys.by_id.get(id).filter(|_| fresh).cloned()
        };
        if let Some(key) = state.keys.read().ok().and_then(|k| fresh_and_known(&k)) {
            return Some(key);
        }
        {
            let _one = state.reading.lock().await;
            let due = state.keys.read().ok().is_some_and(|k| {
                fresh_and_known(&k).is_none()
                    && k.read_at
                        .is_none_or(|at| at.elapsed() >= self.refresh.refresh_min)
            });
            if due {
                // Counted before the reading: a request dropped meanwhile
                // (its client gone) does not let the next one read again.
                if let Ok(mut keys) = state.keys.write() {
                    keys.read_at = Some(Instant::now());
                }
                let read = self.read_keys(&state.issuer).await;
                if let Ok(mut keys) = state.keys.write() {
                    match read {
                        Ok((by_id, endpoints)) => {
                            keys.by_id = by_id;
                            keys.endpoints = Some(endpoints);
                        }
                        Err(error) => tracing::warn!(
                            issuer = %state.issuer.issuer,
                            %error,
                            "the identity provider's keys could not be read; the keys read before stay in use"
                        ),
                    }
                }
            }
        }
        state.keys.read().ok()?.by_id.get(id).cloned()
    }

    /// Verifies a bearer token of a configured issuer at time `now` (Unix
    /// seconds): its signature by a key the issuer published, its issuer,
    /// audience and times; the person and role from the configured claims,
    /// the organisation from the issuer.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Caller, AuthError> {
        if token.len() > TOKEN_MAX_BYTES {
            return Err(AuthError::TooLarge);
        }
        let header = decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(AuthError::Invalid);
        }
        let access_token = header
            .typ
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("at+jwt"));
        if !access_token {
            return Err(AuthError::Invalid);
        }
        let id = header.kid.ok_or(AuthError::Invalid)?;
        let iss = stated_issuer(token).ok_or(AuthError::Invalid)?;
        let state = self.issuers.get(&iss).ok_or(AuthError::Invalid)?;
        let key = self.key(state, &id).await.ok_or(AuthError::Invalid)?;
        if key.algorithm != header.alg {
            return Err(AuthError::Invalid);
        }
        let issuer = &state.issuer;
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[&issuer.audience]);
        let claims = decode::<Value>(token, &key.key, &validation)
            .map_err(|_| AuthError::Invalid)?
            .claims;
        let sub = claims
            .get(&issuer.subject_claim)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Uuid>().ok())
            .ok_or(AuthError::Invalid)?;
        let values: Vec<&str> = match at_path(&claims, &issuer.role_claim) {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let mut roles: Vec<Role> = values
            .iter()
            .filter_map(|v| issuer.roles.get(*v).copied())
            .collect();
        roles.dedup();
        let [role] = roles[..] else {
            return Err(AuthError::Invalid);
        };
        // An ID token (Keycloak's `typ` "ID") is not an access token.
        if claims
            .get("typ")
            .is_some_and(|t| !t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("Bearer")))
        {
            return Err(AuthError::Invalid);
        }
        let time = |name: &str| claims.get(name).and_then(Value::as_i64);
        if claims.get("nbf").is_some_and(|n| n.as_i64().is_none()) {
            return Err(AuthError::Invalid);
        }
        let checked = Claims {
            sub,
            role,
            org: issuer.organisation.clone(),
            exp: time("exp").ok_or(AuthError::Invalid)?,
            iat: time("iat").ok_or(AuthError::Invalid)?,
            nbf: time("nbf"),
        };
        check_claims(&checked, now, self.leeway_seconds)?;
        // SMART scopes: `scope` (space-separated, RFC 9068), or `scp`, a
        // text (Entra ID) or a list (Okta), for the FHIR facade.
        let words = |value: &Value| match value {
            Value::String(text) => Ok(text.clone()),
            Value::Array(list) => list
                .iter()
                .map(|w| w.as_str().ok_or(AuthError::Invalid))
                .collect::<Result<Vec<_>, _>>()
                .map(|w| w.join(" ")),
            // A claim of scopes that does not read is refused, not ignored.
            _ => Err(AuthError::Invalid),
        };
        let scope = match (claims.get("scope"), claims.get("scp")) {
            (None, None) => None,
            (Some(scope), None) | (None, Some(scope)) => Some(words(scope)?),
            (Some(scope), Some(scp)) => Some(format!("{} {}", words(scope)?, words(scp)?)),
        };
        let patient = claims
            .get("patient")
            .and_then(Value::as_str)
            .and_then(|p| Uuid::parse_str(p).ok());
        Ok(Caller {
            subject: checked.sub,
            role: checked.role,
            organisation: checked.org,
            expires_at: checked.exp,
            scope,
            patient,
        })
    }
}

/// Who a bearer token says the caller is: a configured issuer's token goes
/// to its verifier; any other to the local key, while local tokens are on.
#[derive(Clone)]
pub struct Authenticator {
    local: Option<TokenKeys>,
    oidc: Oidc,
}

impl Authenticator {
    /// The configured verifiers: `keys` for local tokens (when
    /// `tokens.local`), and every `[[tokens.issuers]]`.
    pub fn new(settings: &Settings, keys: TokenKeys) -> Result<Self, reqwest::Error> {
        let tokens = &settings.tokens;
        let issuers = tokens
            .issuers
            .iter()
            .map(|i| Issuer {
                organisation: i.organisation.clone(),
                issuer: i.issuer.clone(),
                audience: i.audience.clone(),
                subject_claim: i.subject_claim.clone(),
                role_claim: i.role_claim.clone(),
                roles: i.roles.clone(),
            })
            .collect();
        let refresh = Refresh {
            keys_max_age: tokens.keys_max_age,
            refresh_min: tokens.keys_refresh_min,
            ..Refresh::default()
        };
        let leeway = i64::try_from(tokens.leeway.as_secs()).unwrap_or(i64::MAX);
        if tokens.local && !tokens.issuers.is_empty() {
            tracing::warn!(
                "tokens signed with the local key are taken beside the identity providers': \
                 whoever holds the key can speak for any organisation; set PORTAL_LOCAL_TOKENS=false"
            );
        }
        Ok(Authenticator {
            local: tokens.local.then_some(keys),
            oidc: Oidc::new(issuers, refresh, leeway)?,
        })
    }

    /// The endpoints of the one configured identity provider, if there is
    /// exactly one (for SMART's configuration document).
    pub async fn smart_endpoints(&self) -> Option<Value> {
        self.oidc.only_issuers_endpoints().await
    }

    /// Verifies an `Authorization` header value for GraphQL, the WebSocket
    /// and the witness: a token carrying SMART resource scopes was given to
    /// an app for the FHIR facade, whose scopes only it enforces, so it is
    /// refused here ([`AuthError::FhirOnly`]) rather than read with the
    /// holder's whole role.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let caller = self.verify_fhir_header(header).await?;
        if caller
            .scope
            .as_deref()
            .is_some_and(domain::smart::names_resources)
        {
            return Err(AuthError::FhirOnly);
        }
        Ok(caller)
    }

    /// Verifies an `Authorization` header value for the FHIR facade, which
    /// enforces the token's SMART scopes itself.
    pub async fn verify_fhir_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let token = bearer_token(header)?;
        if self.oidc.knows(token) {
            return self
                .oidc
                .verify(token, chrono::Utc::now().timestamp())
                .await;
        }
        match &self.local {
            Some(keys) => keys.verify(token),
            None => Err(AuthError::Invalid),
        }
    }
}

#[cfg(test)]
#[path = "oidc_tests.rs"]
mod tests;
