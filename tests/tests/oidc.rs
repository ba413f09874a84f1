//! Logging in through each organisation's own OpenID provider (issue 19,
//! step 1), over HTTP against the real `portal serve` on both stores.
//!
//! Two issuers, each a small HTTP server on loopback publishing a discovery
//! document and a key set (EdDSA for one, ES256 for the other). The real
//! OpenID provider and its grants are the next step; here: each issuer's
//! tokens work for its organisation only, whatever `org` they claim, and
//! with local tokens switched off a `portal token` is refused.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use api::auth::Role;
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use portal_tests::*;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use uuid::Uuid;

struct Signer {
    algorithm: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

fn ed25519() -> Signer {
    let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(der.as_ref()).unwrap();
    Signer {
        algorithm: Algorithm::EdDSA,
        key: EncodingKey::from_ed_der(der.as_ref()),
        jwk: json!({ "kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": "ed",
                     "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()) }),
    }
}

fn p256() -> Signer {
    let rng = SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    Signer {
        algorithm: Algorithm::ES256,
        key: EncodingKey::from_ec_der(der.as_ref()),
        jwk: json!({ "kty": "EC", "crv": "P-256", "use": "sig", "kid": "ec",
                     "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                     "y": URL_SAFE_NO_PAD.encode(&point[33..65]) }),
    }
}

/// An identity provider on loopback publishing `signer`'s key; its issuer URL.
async fn identity_provider(signer: &Signer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new((base.clone(), signer.jwk.clone())));
    let discovery = {
        let state = Arc::clone(&state);
        move || async move {
            let base = state.lock().unwrap().0.clone();
            axum::Json(json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") }))
        }
    };
    let jwks = move || async move {
        let key = state.lock().unwrap().1.clone();
        axum::Json(json!({ "keys": [key] }))
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn token(signer: &Signer, issuer: &str, person: Uuid, role: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "iss": issuer, "aud": "portal", "sub": person.to_string(),
                         "iat": now, "exp": now + 300, "org": "clinic-b",
                         "realm_access": { "roles": [role] } });
    let mut header = Header::new(signer.algorithm);
    header.kid = jwk_id(&signer.jwk);
    encode(&header, &claims, &signer.key).unwrap()
}

fn jwk_id(jwk: &Value) -> Option<String> {
    jwk["kid"].as_str().map(str::to_string)
}

const ME: &str = "{ me { personId role organisation } }";

async fn each_issuer_speaks_for_its_organisation_only(store: Store) {
    let (a_key, b_key) = (ed25519(), p256());
    let (a, b) = (
        identity_provider(&a_key).await,
        identity_provider(&b_key).await,
    );
    let db = fresh_db(store).await;
    let config = db.dir.join("portal.toml");
    let issuer = |org: &str, url: &str| {
        format!(
            "[[tokens.issuers]]\norganisation = \"{org}\"\nissuer = \"{url}\"\naudience = \"portal\"\nrole_claim = \"realm_access.roles\"\nroles = {{ \"portal-user\" = \"service_user\", \"portal-provider\" = \"provider\" }}\n"
        )
    };
    std::fs::write(&config, issuer("clinic-a", &a) + &issuer("clinic-b", &b)).unwrap();
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_CONFIG", &config.display().to_string()),
            ("PORTAL_LOCAL_TOKENS", "false"),
        ],
    )
    .await;
    let person = Uuid::new_v4();
    // A's token: clinic-a, whatever `org` it claims.
    let a_user = server.client(Some(token(&a_key, &a, person, "portal-user")));
    let me = a_user.data(ME, json!({})).await;
    assert_eq!(
        me["me"],
        json!({ "personId": person.to_string(), "role": "SERVICE_USER", "organisation": "clinic-a" })
    );
    a_user
        .data("mutation { openPortal { version } }", json!({}))
        .await;
    // B's provider: clinic-b.
    let b_provider = server.client(Some(token(&b_key, &b, Uuid::new_v4(), "portal-provider")));
    let me = b_provider.data(ME, json!({})).await;
    assert_eq!(me["me"]["organisation"], "clinic-b");
    assert_eq!(me["me"]["role"], "PROVIDER");
    // A token saying it is A's, signed by B's key, is refused.
    let forged = server.client(Some(token(&b_key, &a, person, "portal-user")));
    assert_eq!(forged.error_code(ME, json!({})).await, "UNAUTHENTICATED");
    // Local tokens are off.
    let local = server.client(Some(portal_tests::token(
        person,
        Role::ServiceUser,
        "clinic-a",
    )));
    assert_eq!(local.error_code(ME, json!({})).await, "UNAUTHENTICATED");
    server.stop().await;
}

both_stores!(issuers, each_issuer_speaks_for_its_organisation_only);
