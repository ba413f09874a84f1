//! `portal bench fhir` and `portal bench tokens` (issue 19): a FHIR read of a
//! patient's Goals beside the GraphQL read of the same goals, and the cost
//! of checking a token of an organisation's identity provider (its keys
//! cached) beside the local HS256 token's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::auth::{Role, Secret, TokenKeys};
use api::settings::{IssuerSettings, Settings};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::bench::{call, gathered, relate};
use crate::{Error, Result};

/// The goal fields both reads fetch: what the FHIR facade asks GraphQL for.
const GOALS: &str = "query($p: ID) { goals(portalId: $p, includeClosed: true) { uuid domain title description state setAt updatedAt closedAt activities { uuid title state plannedAt updatedAt } } }";

/// `clients` service users with `goals` goals of two activities each, each
/// followed by a provider with a grant of the core section (`user/*.rs`).
/// For `seconds` each, in turn: the providers' GraphQL `goals` reads, their
/// FHIR `Goal?patient=` searches (both recorded in the access trail), and
/// `me` (the cheapest query). Prints one JSON line: per read, requests per
/// second and p50/p99 in milliseconds.
pub async fn fhir(
    settings: &Settings,
    base: &str,
    clients: usize,
    seconds: u64,
    goals: usize,
) -> Result<()> {
    let keys = TokenKeys::new(&settings.resolve_token_key()?);
    let url = format!("{base}/graphql");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .build()?;
    let mut pairs = Vec::new();
    for _ in 0..clients {
        let (user, provider) = (Uuid::new_v4(), Uuid::new_v4());
        let owner = keys.mint(user, Role::ServiceUser, "bench", 3600)?;
        let carer = keys.mint(provider, Role::Provider, "bench", 3600)?;
        // A SMART app's token is for the FHIR facade only.
        let app = keys.mint_scoped(provider, Role::Provider, "bench", 3600, "user/*.rs", None)?;
        call(
            &http,
            &url,
            &owner,
            "mutation { openPortal { version } }",
            json!({}),
        )
        .await?;
        for i in 0..goals {
            let set = call(
                &http,
                &url,
                &owner,
                "mutation($t: String!) { setGoal(domain: \"employment\", title: $t, description: \"one step at a time\") { goal { id } } }",
                json!({ "t": format!("goal {i}") }),
            )
            .await?;
            for a in 0..2 {
                call(
                    &http,
                    &url,
                    &owner,
                    "mutation($g: ID!, $t: String!) { planActivity(goalId: $g, title: $t) { version } }",
                    json!({ "g": set["setGoal"]["goal"]["id"], "t": format!("step {a}") }),
                )
                .await?;
            }
        }
        let rel = relate(&http, &url, &owner, &carer, provider).await?;
        call(
            &http,
            &url,
            &owner,
            "mutation($r: ID!) { grantAccess(relationshipId: $r, section: CORE) { version } }",
            json!({ "r": rel }),
        )
        .await?;
        pairs.push((user, carer, app));
    }
    let mut out = serde_json::Map::new();
    out.insert("clients".into(), json!(clients));
    out.insert("goals".into(), json!(goals));
    for read in ["graphql", "fhir", "me"] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = pairs
            .iter()
            .map(|(user, carer, app)| {
                let (http, url, base, user, carer, app) = (
                    http.clone(),
                    url.clone(),
                    base.to_string(),
                    *user,
                    carer.clone(),
                    app.clone(),
                );
                tokio::spawn(async move {
                    let fhir_url = format!("{base}/fhir/R4/Goal?patient=Patient/{user}");
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        match read {
                            "graphql" => {
                                let data =
                                    call(&http, &url, &carer, GOALS, json!({ "p": user })).await?;
                                if data["goals"].as_array().map(Vec::len) != Some(goals) {
                                    return Err(Error::Refused {
                                        operation: "goals".into(),
                                        detail: data.to_string(),
                                    });
                                }
                            }
                            "fhir" => {
                                let response = http.get(&fhir_url).bearer_auth(&app).send().await?;
                                let status = response.status();
                                let bundle: Value = response.json().await?;
                                if !status.is_success()
                                    || bundle["total"].as_u64() != Some(goals as u64)
                                {
                                    return Err(Error::Refused {
                                        operation: "Goal search".into(),
                                        detail: bundle.to_string(),
                                    });
                                }
                            }
                            _ => {
                                call(&http, &url, &carer, "{ me { personId } }", json!({})).await?;
                            }
                        }
                        latencies.push(started.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok::<_, Error>(latencies)
                })
            })
            .collect();
        out.insert(read.into(), gathered(tasks, seconds).await?);
    }
    println!("{}", Value::Object(out));
    Ok(())
}

/// A signing key and its public JWK.
struct Signer {
    algorithm: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

fn signers() -> Result<Vec<Signer>> {
    let rng = SystemRandom::new();
    fn bad(e: impl std::fmt::Display) -> Error {
        Error::Input(format!("making a signing key: {e}"))
    }
    let ed = Ed25519KeyPair::generate_pkcs8(&rng).map_err(bad)?;
    let ed_pair = Ed25519KeyPair::from_pkcs8(ed.as_ref()).map_err(bad)?;
    let ec = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(bad)?;
    let ec_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec.as_ref(), &rng)
        .map_err(bad)?;
    let point = ec_pair.public_key().as_ref();
    Ok(vec![
        Signer {
            algorithm: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(ed.as_ref()),
            jwk: json!({ "kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": "ed",
                         "x": URL_SAFE_NO_PAD.encode(ed_pair.public_key().as_ref()) }),
        },
        Signer {
            algorithm: Algorithm::ES256,
            key: EncodingKey::from_ec_der(ec.as_ref()),
            jwk: json!({ "kty": "EC", "crv": "P-256", "use": "sig", "kid": "ec",
                         "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                         "y": URL_SAFE_NO_PAD.encode(&point[33..65]) }),
        },
    ])
}

/// For `seconds` each, in one task: the local HS256 token checked, then an
/// identity provider's EdDSA and ES256 tokens, its key set served on
/// loopback and cached after the first check (as in service). Prints one
/// JSON line: checks per second and mean microseconds per check.
pub async fn tokens(seconds: u64) -> Result<()> {
    let signers = signers()?;
    let keys: Vec<Value> = signers.iter().map(|s| s.jwk.clone()).collect();
    let loopback = |source| Error::Io {
        path: "127.0.0.1:0".into(),
        source,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(loopback)?;
    let issuer = format!("http://{}", listener.local_addr().map_err(loopback)?);
    let document = json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") });
    let key_set = Arc::new(json!({ "keys": keys }));
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(document) }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || async move { axum::Json((*key_set).clone()) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut settings = Settings::default();
    settings.tokens.issuers.push(IssuerSettings {
        organisation: "bench".into(),
        issuer: issuer.clone(),
        audience: "portal".into(),
        subject_claim: "sub".into(),
        role_claim: "realm_access.roles".into(),
        roles: [("portal-provider".to_string(), Role::Provider)].into(),
    });
    let local = TokenKeys::new(&Secret::new("portal-bench-key-0123456789abcdef0123456789"));
    let auth = api::oidc::Authenticator::new(&settings, local.clone())?;
    let person = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp();
    let mut tokens = vec![(
        "hs256_local".to_string(),
        local.mint(person, Role::Provider, "bench", 3600)?,
    )];
    for signer in &signers {
        let claims = json!({ "iss": issuer, "aud": "portal", "sub": person, "iat": now,
                             "exp": now + 3600, "realm_access": { "roles": ["portal-provider"] } });
        let mut header = Header::new(signer.algorithm);
        header.kid = signer.jwk["kid"].as_str().map(str::to_string);
        let token = encode(&header, &claims, &signer.key).map_err(|e| Error::Refused {
            operation: "signing".into(),
            detail: e.to_string(),
        })?;
        tokens.push((
            format!("{:?}_oidc_cached", signer.algorithm).to_lowercase(),
            token,
        ));
    }
    let mut out = serde_json::Map::new();
    for (name, token) in tokens {
        let header = format!("Bearer {token}");
        // The first check reads the issuer's keys; the rest find them cached.
        auth.verify_header(Some(&header))
            .await
            .map_err(|e| Error::Refused {
                operation: name.clone(),
                detail: format!("{e:?}"),
            })?;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let mut checks = 0u64;
        while Instant::now() < deadline {
            for _ in 0..100 {
                if auth.verify_header(Some(&header)).await.is_err() {
                    return Err(Error::Refused {
                        operation: name.clone(),
                        detail: "refused".into(),
                    });
                }
            }
            checks += 100;
        }
        let secs = started.elapsed().as_secs_f64();
        out.insert(
            name,
            json!({ "per_s": checks as f64 / secs, "us_per_check": secs * 1e6 / checks as f64 }),
        );
    }
    println!("{}", Value::Object(out));
    Ok(())
}
