#![allow(clippy::unwrap_used)]
//! The verifier against a real HTTP server publishing discovery documents
//! and key sets (two issuers), with keys made by `ring`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use axum::extract::State as Shared;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::{encode, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use super::*;

/// A signing key and its public JWK.
struct Signer {
    id: String,
    algorithm: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

fn ed25519(id: &str) -> Signer {
    let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(der.as_ref()).unwrap();
    Signer {
        id: id.into(),
        algorithm: Algorithm::EdDSA,
        key: EncodingKey::from_ed_der(der.as_ref()),
        jwk: json!({ "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": id,
                     "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()) }),
    }
}

fn p256(id: &str) -> Signer {
    let rng = SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    Signer {
        id: id.into(),
        algorithm: Algorithm::ES256,
        key: EncodingKey::from_ec_der(der.as_ref()),
        jwk: json!({ "kty": "EC", "crv": "P-256", "use": "sig", "kid": id,
                     "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                     "y": URL_SAFE_NO_PAD.encode(&point[33..65]) }),
    }
}

/// One identity provider on loopback: its published keys, and whether it
/// answers.
struct Provider {
    base: String,
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
    /// When set, it answers nothing for a minute (a hung provider).
    hang: Arc<AtomicBool>,
    /// Discovery documents asked for.
    asked: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Published {
    base: Arc<Mutex<String>>,
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    asked: Arc<AtomicUsize>,
}

async fn discovery(Shared(p): Shared<Published>) -> axum::response::Response {
    p.asked.fetch_add(1, Ordering::SeqCst);
    if p.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let base = p.base.lock().unwrap().clone();
    axum::Json(json!({ "issuer": base, "jwks_uri": format!("{base}/jwks"),
                       "token_endpoint": format!("{base}/token"),
                       "authorization_endpoint": "javascript:alert(1)",
                       "grant_types_supported": ["authorization_code"] }))
    .into_response()
}

async fn jwks(Shared(p): Shared<Published>) -> axum::response::Response {
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = p.keys.lock().unwrap().clone();
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn provider(keys: &[&Signer]) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let published = Published {
        base: Arc::new(Mutex::new(base.clone())),
        keys: Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect())),
        down: Arc::new(AtomicBool::new(false)),
        hang: Arc::new(AtomicBool::new(false)),
        asked: Arc::new(AtomicUsize::new(0)),
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .with_state(published.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Provider {
        base,
        keys: published.keys,
        down: published.down,
        hang: published.hang,
        asked: published.asked,
    }
}

fn issuer(provider: &Provider, organisation: &str) -> Issuer {
    Issuer {
        organisation: organisation.into(),
        issuer: provider.base.clone(),
        audience: "portal".into(),
        subject_claim: "sub".into(),
        role_claim: "realm_access.roles".into(),
        roles: BTreeMap::from([
            ("portal-user".to_string(), Role::ServiceUser),
            ("portal-provider".to_string(), Role::Provider),
        ]),
    }
}

const PERSON: Uuid = Uuid::from_u128(42);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(iss: &str) -> Value {
    json!({ "iss": iss, "aud": "portal", "sub": PERSON.to_string(), "iat": now(), "exp": now() + 300,
            "realm_access": { "roles": ["offline_access", "portal-user"] }, "org": "someone-elses" })
}

fn sign(signer: &Signer, claims: &Value) -> String {
    let mut header = Header::new(signer.algorithm);
    header.kid = Some(signer.id.clone());
    encode(&header, claims, &signer.key).unwrap()
}

fn eager() -> Refresh {
    Refresh {
        keys_max_age: Duration::ZERO,
        refresh_min: Duration::ZERO,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn each_issuers_tokens_are_of_its_organisation_only() {
    let (a_key, b_key) = (ed25519("a1"), p256("b1"));
    let (a, b) = (provider(&[&a_key]).await, provider(&[&b_key]).await);
    let oidc = Oidc::new(
        vec![issuer(&a, "clinic-a"), issuer(&b, "clinic-b")],
        Refresh::default(),
        30,
    )
    .unwrap();
    let caller = oidc
        .verify(&sign(&a_key, &claims(&a.base)), now())
        .await
        .unwrap();
    assert_eq!(
        (caller.subject, caller.role, caller.organisation.as_str()),
        (PERSON, Role::ServiceUser, "clinic-a"),
        "the organisation is the issuer's, not the `org` claim"
    );
    let caller = oidc
        .verify(&sign(&b_key, &claims(&b.base)), now())
        .await
        .unwrap();
    assert_eq!(caller.organisation, "clinic-b");
    // B's key cannot speak for A, nor A's for B.
    assert_eq!(
        oidc.verify(&sign(&b_key, &claims(&a.base)), now()).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(
        oidc.verify(&sign(&a_key, &claims(&b.base)), now()).await,
        Err(AuthError::Invalid)
    );
    // An issuer not configured is not trusted, even with a published key.
    let stranger = provider(&[&a_key]).await;
    assert_eq!(
        oidc.verify(&sign(&a_key, &claims(&stranger.base)), now())
            .await,
        Err(AuthError::Invalid)
    );
    assert!(!oidc.knows(&sign(&a_key, &claims(&stranger.base))));
    assert!(oidc.knows(&sign(&a_key, &claims(&a.base))));
}

#[tokio::test]
async fn the_claims_are_checked_as_strictly_as_local_tokens() {
    let key = ed25519("k");
    let p = provider(&[&key]).await;
    let oidc = Oidc::new(vec![issuer(&p, "clinic")], Refresh::default(), 30).unwrap();
    let changed = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&p.base);
        change(&mut c);
        sign(&key, &c)
    };
    let cases: Vec<(&str, String, AuthError)> = vec![
        (
            "another audience",
            changed(&|c| c["aud"] = json!("other")),
            AuthError::Invalid,
        ),
        (
            "expired",
            changed(&|c| c["exp"] = json!(now() - 1)),
            AuthError::Expired,
        ),
        (
            "not yet valid",
            changed(&|c| c["nbf"] = json!(now() + 600)),
            AuthError::NotYetValid,
        ),
        (
            "issued in the future",
            changed(&|c| c["iat"] = json!(now() + 600)),
            AuthError::Invalid,
        ),
        (
            "no role",
            changed(&|c| c["realm_access"]["roles"] = json!(["offline_access"])),
            AuthError::Invalid,
        ),
        (
            "two roles",
            changed(&|c| c["realm_access"]["roles"] = json!(["portal-user", "portal-provider"])),
            AuthError::Invalid,
        ),
        (
            "a subject that is not a person id",
            changed(&|c| c["sub"] = json!("alice")),
            AuthError::Invalid,
        ),
        (
            "an ID token",
            changed(&|c| c["typ"] = json!("ID")),
            AuthError::Invalid,
        ),
        (
            "nbf not a number",
            changed(&|c| c["nbf"] = json!("soon")),
            AuthError::Invalid,
        ),
        (
            "no exp",
            changed(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            AuthError::Invalid,
        ),
    ];
    for (what, token, error) in cases {
        assert_eq!(oidc.verify(&token, now()).await, Err(error), "{what}");
    }
    // A role given as one text maps too.
    let mut one = claims(&p.base);
    one["realm_access"]["roles"] = json!("portal-provider");
    assert_eq!(
        oidc.verify(&sign(&key, &one), now()).await.unwrap().role,
        Role::Provider
    );
    // HS256 with the public key as a secret (the classic confusion) is refused.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k".into());
    let confused = encode(&header, &claims(&p.base), &EncodingKey::from_secret(b"k")).unwrap();
    assert_eq!(oidc.verify(&confused, now()).await, Err(AuthError::Invalid));
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_a_removed_or_unpublished_one_refused() {
    let (old, new, never) = (ed25519("old"), ed25519("new"), ed25519("never"));
    let p = provider(&[&old]).await;
    let oidc = Oidc::new(vec![issuer(&p, "clinic")], eager(), 30).unwrap();
    let token = |k: &Signer| sign(k, &claims(&p.base));
    assert!(oidc.verify(&token(&old), now()).await.is_ok());
    // Rotation: the new key is published beside the old, then the old removed.
    p.keys.lock().unwrap().push(new.jwk.clone());
    assert!(
        oidc.verify(&token(&new), now()).await.is_ok(),
        "the new key at once"
    );
    p.keys.lock().unwrap().retain(|k| k["kid"] != "old");
    assert_eq!(
        oidc.verify(&token(&old), now()).await,
        Err(AuthError::Invalid)
    );
    assert!(oidc.verify(&token(&new), now()).await.is_ok());
    // A key the issuer never published, under a known or unknown id.
    assert_eq!(
        oidc.verify(&token(&never), now()).await,
        Err(AuthError::Invalid)
    );
    let forged = Signer {
        id: "new".into(),
        ..ed25519("x")
    };
    assert_eq!(
        oidc.verify(&token(&forged), now()).await,
        Err(AuthError::Invalid)
    );
}

#[tokio::test]
async fn an_issuer_that_is_down_leaves_cached_keys_working_and_fails_closed_for_others() {
    let (cached, later) = (ed25519("cached"), ed25519("later"));
    let p = provider(&[&cached]).await;
    let refresh = Refresh {
        keys_max_age: Duration::ZERO,
        refresh_min: Duration::ZERO,
        timeout: Duration::from_secs(1),
    };
    let oidc = Oidc::new(vec![issuer(&p, "clinic")], refresh, 30).unwrap();
    let token = |k: &Signer| sign(k, &claims(&p.base));
    assert!(oidc.verify(&token(&cached), now()).await.is_ok());
    p.down.store(true, Ordering::SeqCst);
    p.keys.lock().unwrap().push(later.jwk.clone());
    // Every verification tries to read the keys again (max age zero) and
    // fails: the cached key still works, the unknown one does not.
    assert!(oidc.verify(&token(&cached), now()).await.is_ok());
    assert_eq!(
        oidc.verify(&token(&later), now()).await,
        Err(AuthError::Invalid)
    );
    // Back up: the later key is read.
    p.down.store(false, Ordering::SeqCst);
    assert!(oidc.verify(&token(&later), now()).await.is_ok());
}

#[tokio::test]
async fn unknown_key_ids_read_the_keys_at_most_every_refresh_min() {
    let (first, second) = (ed25519("first"), ed25519("second"));
    let p = provider(&[&first]).await;
    let refresh = Refresh {
        keys_max_age: Duration::from_secs(3600),
        refresh_min: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
    };
    let oidc = Oidc::new(vec![issuer(&p, "clinic")], refresh, 30).unwrap();
    assert!(oidc
        .verify(&sign(&first, &claims(&p.base)), now())
        .await
        .is_ok());
    p.keys.lock().unwrap().push(second.jwk.clone());
    // Read a moment ago: a flood of unknown key ids does not make it read again.
    assert_eq!(
        oidc.verify(&sign(&second, &claims(&p.base)), now()).await,
        Err(AuthError::Invalid)
    );
}

#[tokio::test]
async fn only_signing_keys_of_the_stated_algorithm_are_taken_and_one_odd_key_spoils_nothing() {
    let (good, mislabelled, encryption) = (ed25519("good"), ed25519("mislabelled"), ed25519("enc"));
    let mut wrong_alg = mislabelled.jwk.clone();
    wrong_alg["alg"] = json!("ES256");
    let mut for_encryption = encryption.jwk.clone();
    for_encryption["alg"] = json!("RSA-OAEP");
    let odd = json!({ "kty": "OKP", "crv": "X25519", "kid": "odd", "x": "AAAA" });
    let unknown = json!({ "kty": "FUTURE", "kid": "future" });
    let p = provider(&[]).await;
    *p.keys.lock().unwrap() = vec![odd, unknown, wrong_alg, for_encryption, good.jwk.clone()];
    let oidc = Oidc::new(vec![issuer(&p, "clinic")], eager(), 30).unwrap();
    let token = |k: &Signer| sign(k, &claims(&p.base));
    assert!(
        oidc.verify(&token(&good), now()).await.is_ok(),
        "the good key, beside odd ones"
    );
    assert_eq!(
        oidc.verify(&token(&mislabelled), now()).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(
        oidc.verify(&token(&encryption), now()).await,
        Err(AuthError::Invalid)
    );
    // A header that is not an access token's.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("good".into());
    header.typ = Some("logout+jwt".into());
    let other_kind = encode(&header, &claims(&p.base), &good.key).unwrap();
    assert_eq!(
        oidc.verify(&other_kind, now()).await,
        Err(AuthError::Invalid)
    );
}

#[test]
fn keys_are_read_over_https_or_on_loopback_only() {
    for url in [
        "https://id.example.org/realms/a",
        "http://127.0.0.1:8080",
        "http://localhost/x",
    ] {
        assert!(safe_url(url), "{url}");
    }
    for url in [
        "http://id.example.org",
        "http://localhost.evil.org",
        "file:///etc/passwd",
        "ftp://x",
    ] {
        assert!(!safe_url(url), "{url}");
    }
}

#[tokio::test]
async fn the_one_issuers_endpoints_are_taken_from_its_document_when_safe() {
    let key = ed25519("a");
    let a = provider(&[&key]).await;
    let oidc = Oidc::new(vec![issuer(&a, "clinic-a")], eager(), 0).unwrap();
    let endpoints = oidc.only_issuers_endpoints().await.unwrap();
    assert_eq!(endpoints["token_endpoint"], format!("{}/token", a.base));
    assert_eq!(endpoints["issuer"], a.base);
    // Its lists are not copied: the facade states its own.
    assert!(endpoints.get("grant_types_supported").is_none());
    // A URL that is neither https nor loopback http is left out.
    assert!(endpoints.get("authorization_endpoint").is_none());
    // With two issuers there is no one set of endpoints to give.
    let b = provider(&[&key]).await;
    let two = Oidc::new(
        vec![issuer(&a, "clinic-a"), issuer(&b, "clinic-b")],
        eager(),
        0,
    )
    .unwrap();
    assert!(two.only_issuers_endpoints().await.is_none());
}

#[tokio::test]
async fn a_hung_issuer_is_given_up_on_once_at_a_time_and_cancelled_readings_count() {
    let (cached, unknown) = (ed25519("cached"), ed25519("unknown"));
    let p = provider(&[&cached]).await;
    let refresh = Refresh {
        keys_max_age: Duration::from_secs(300),
        refresh_min: Duration::from_secs(2),
        timeout: Duration::from_millis(300),
    };
    let oidc = Oidc::new(vec![issuer(&p, "clinic")], refresh, 30).unwrap();
    let token = |k: &Signer| sign(k, &claims(&p.base));
    assert!(oidc.verify(&token(&cached), now()).await.is_ok());
    assert_eq!(p.asked.load(Ordering::SeqCst), 1);
    // Past refresh_min: an unknown key id may have the keys read again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Now it hangs. Twenty unknown key ids at once: one reading, given up
    // after the timeout (not the provider's minute); all refused, and the
    // cached key still works meanwhile.
    p.hang.store(true, Ordering::SeqCst);
    let unknown_token = token(&unknown);
    let tries: Vec<_> = (0..20)
        .map(|_| {
            let (oidc, t) = (oidc.clone(), unknown_token.clone());
            tokio::spawn(async move { oidc.verify(&t, now()).await })
        })
        .collect();
    // Once the reading hangs, the cached key still works.
    asked_reaches(&p, 2).await;
    assert!(oidc.verify(&token(&cached), now()).await.is_ok());
    let all = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(tries))
        .await
        .expect("a hung issuer held the verifier");
    for answer in all {
        assert_eq!(answer.unwrap(), Err(AuthError::Invalid));
    }
    assert_eq!(p.asked.load(Ordering::SeqCst), 2);
    // A reading dropped part-way (its client gone) still counts: the next
    // unknown key id within refresh_min does not read again.
    let fresh = Oidc::new(vec![issuer(&p, "clinic")], refresh, 30).unwrap();
    {
        let reading = fresh.verify(&unknown_token, now());
        tokio::pin!(reading);
        // Polled until the provider has the request, then dropped.
        tokio::select! {
            _ = &mut reading => panic!("the reading ended against a hung provider"),
            _ = asked_reaches(&p, 3) => {}
        }
    }
    p.hang.store(false, Ordering::SeqCst);
    assert_eq!(
        fresh.verify(&token(&cached), now()).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(p.asked.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn scopes_are_read_in_every_form_and_a_claim_that_does_not_read_is_refused() {
    let key = ed25519("a");
    let p = provider(&[&key]).await;
    let oidc = Oidc::new(vec![issuer(&p, "clinic")], Refresh::default(), 30).unwrap();
    let with = |name: &str, value: Value| {
        let mut c = claims(&p.base);
        c[name] = value;
        sign(&key, &c)
    };
    let scope = |token: String| {
        let oidc = oidc.clone();
        async move { oidc.verify(&token, now()).await.map(|c| c.scope) }
    };
    assert_eq!(scope(sign(&key, &claims(&p.base))).await, Ok(None));
    assert_eq!(
        scope(with("scope", json!("user/*.rs openid"))).await,
        Ok(Some("user/*.rs openid".into()))
    );
    assert_eq!(
        scope(with("scope", json!(["user/*.rs", "openid"]))).await,
        Ok(Some("user/*.rs openid".into()))
    );
    assert_eq!(
        scope(with("scp", json!("patient/Goal.rs"))).await,
        Ok(Some("patient/Goal.rs".into()))
    );
    assert_eq!(
        scope(with("scp", json!(["patient/Goal.rs"]))).await,
        Ok(Some("patient/Goal.rs".into()))
    );
    assert_eq!(
        scope(with("scope", json!(5))).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(
        scope(with("scp", json!([1]))).await,
        Err(AuthError::Invalid)
    );
}

/// Waits (up to 10 s) until the provider has been asked for its document
/// `n` times.
async fn asked_reaches(p: &Provider, n: usize) {
    for _ in 0..1000 {
        if p.asked.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the provider was not asked {n} times");
}
