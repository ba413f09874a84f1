//! Logging in through a real OpenID provider (issue 19, step 2), over HTTP
//! against the real `portal serve` on both stores, with local tokens off.
//!
//! Two issuers, each the certified `oidc-provider` from npm started as a node
//! process (`ops/oidc-provider/server.mjs`): A signs RS256 for clinic-a, B
//! ES256 for clinic-b. Tokens come from the real client_credentials grant at
//! each provider's token endpoint (its discovery document names it). Proven:
//! each issuer's tokens speak for its organisation, with the client's person
//! and role; a rotated key works at once (an unknown key id makes Portal read
//! the keys again), a removed one is refused once the cache is
//! `keys_max_age` old; tokens signed by keys the issuer never published are
//! refused; an issuer that is down leaves its cached keys working and refuses
//! any other key (fail closed), and works again once it is back.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portal_tests::*;
use ring::rand::SystemRandom;
use ring::rsa::{KeyPairComponents, PublicKeyComponents};
use ring::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// Portal reads an issuer's keys again once they are this old (the window in
/// which a rotated key must be seen, across a restart of its provider, and
/// the wait for a removed key to be refused)...
const KEYS_MAX_AGE: Duration = Duration::from_secs(6);
/// ...and on an unknown key id, at most this often.
const KEYS_REFRESH: Duration = Duration::from_secs(1);

const ME: &str = "{ me { personId role organisation } }";

/// `server.mjs` of `ops/oidc-provider`: `PORTAL_TEST_OIDC_PROVIDER` (set by
/// `ops/oidc-env`), else the repository's own, which must be installed.
fn provider_script() -> PathBuf {
    let script = std::env::var_os("PORTAL_TEST_OIDC_PROVIDER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/oidc-provider/server.mjs")
        });
    let installed = script.with_file_name("node_modules").join("oidc-provider");
    assert!(
        installed.is_dir(),
        "{} is missing: the OpenID provider these tests start is not installed. \
         Run the tests with ops/test, or first `source ops/oidc-env` (needs node and npm)",
        installed.display()
    );
    script
}

/// A fresh private signing key from `ops/oidc-provider/keys.mjs`, as a JWK.
async fn new_key(alg: &str) -> Value {
    let out = Command::new("node")
        .arg(provider_script().with_file_name("keys.mjs"))
        .arg(alg)
        .output()
        .await
        .expect("node is not installed");
    assert!(out.status.success(), "keys.mjs {alg} failed");
    let set: Value = serde_json::from_slice(&out.stdout).unwrap();
    set["keys"][0].clone()
}

fn kid(jwk: &Value) -> &str {
    jwk["kid"].as_str().unwrap()
}

/// A client of a provider: its id (a UUID: the tokens' `sub`) and secret.
struct ClientApp {
    id: Uuid,
    secret: String,
}

/// One running provider process.
struct Issuer {
    child: Child,
    url: String,
    port: u16,
}

/// Starts a provider on `port` (0: any) publishing `keys` (it signs with the
/// first) for `clients` (`(client, roles)`), its files in `dir`.
async fn start_issuer(
    dir: &Path,
    name: &str,
    port: u16,
    keys: &[&Value],
    clients: &[(&ClientApp, &str)],
) -> Issuer {
    let keys_file = dir.join(format!("{name}-keys.json"));
    let clients_file = dir.join(format!("{name}-clients.json"));
    std::fs::write(&keys_file, json!({ "keys": keys }).to_string()).unwrap();
    let clients: Vec<Value> = clients
        .iter()
        .map(|(c, role)| json!({ "client_id": c.id, "client_secret": c.secret, "roles": [role] }))
        .collect();
    std::fs::write(&clients_file, Value::from(clients).to_string()).unwrap();
    let mut child = Command::new("node")
        .arg(provider_script())
        .arg("--port")
        .arg(port.to_string())
        .arg("--keys")
        .arg(&keys_file)
        .arg("--clients")
        .arg(&clients_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node is not installed");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the OpenID provider did not start within 30 s")
        .unwrap()
        .expect("the OpenID provider exited before listening");
    let started: Value = serde_json::from_str(&first).unwrap();
    Issuer {
        child,
        url: started["issuer"].as_str().unwrap().to_string(),
        port: u16::try_from(started["port"].as_u64().unwrap()).unwrap(),
    }
}

impl Issuer {
    /// Kills the process, as an outage would, and waits for it to be gone.
    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// An access token through the client_credentials grant, at the token
/// endpoint the provider's discovery document names.
async fn grant(issuer: &Issuer, client: &ClientApp) -> String {
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!("{}/.well-known/openid-configuration", issuer.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = http
        .post(discovery["token_endpoint"].as_str().unwrap())
        .basic_auth(client.id, Some(&client.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "token request refused: {body}");
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_string()
}

/// Part `n` (0 the header, 1 the claims) of a JWT, decoded, unchecked.
fn part(token: &str, n: usize) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(n).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A JWT of `claims` signed by the private `jwk` (RS256 or ES256), its
/// header naming key id `kid`: what the test signs itself.
fn sign(jwk: &Value, kid: &str, claims: &Value) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let bytes = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let alg = jwk["alg"].as_str().unwrap();
    let header = json!({ "alg": alg, "typ": "at+jwt", "kid": kid });
    let input = format!("{}.{}", b64(&header), b64(claims));
    let rng = SystemRandom::new();
    let signature = match alg {
        "RS256" => {
            let pair = RsaKeyPair::from_components(&KeyPairComponents {
                public_key: PublicKeyComponents {
                    n: bytes("n"),
                    e: bytes("e"),
                },
                d: bytes("d"),
                p: bytes("p"),
                q: bytes("q"),
                dP: bytes("dp"),
                dQ: bytes("dq"),
                qInv: bytes("qi"),
            })
            .unwrap();
            let mut out = vec![0; pair.public().modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut out)
                .unwrap();
            out
        }
        "ES256" => {
            let point = [vec![4], bytes("x"), bytes("y")].concat();
            let pair = EcdsaKeyPair::from_private_key_and_public_key(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &bytes("d"),
                &point,
                &rng,
            )
            .unwrap();
            pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
        }
        other => panic!("no signer for {other}"),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn issuer_settings(organisation: &str, url: &str) -> String {
    format!(
        "[[tokens.issuers]]\norganisation = \"{organisation}\"\nissuer = \"{url}\"\naudience = \"portal\"\n\
         subject_claim = \"sub\"\nrole_claim = \"realm_access.roles\"\n\
         roles = {{ \"portal-user\" = \"service_user\", \"portal-provider\" = \"provider\" }}\n"
    )
}

fn client_app() -> ClientApp {
    ClientApp {
        id: Uuid::new_v4(),
        secret: Uuid::new_v4().simple().to_string(),
    }
}

async fn a_real_provider_logs_people_in(store: Store) {
    let started = Instant::now();
    let (a_key, a_key2, b_key, b_key2) = (
        new_key("RS256").await,
        new_key("RS256").await,
        new_key("ES256").await,
        new_key("ES256").await,
    );
    let (a_user, a_staff, b_user, b_staff) =
        (client_app(), client_app(), client_app(), client_app());
    let a_clients = [(&a_user, "portal-user"), (&a_staff, "portal-provider")];
    let b_clients = [(&b_user, "portal-user"), (&b_staff, "portal-provider")];
    let db = fresh_db(store).await;
    let a = start_issuer(&db.dir, "a", 0, &[&a_key], &a_clients).await;
    let b = start_issuer(&db.dir, "b", 0, &[&b_key], &b_clients).await;
    let config = db.dir.join("portal.toml");
    std::fs::write(
        &config,
        issuer_settings("clinic-a", &a.url) + &issuer_settings("clinic-b", &b.url),
    )
    .unwrap();
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_CONFIG", &config.display().to_string()),
            ("PORTAL_LOCAL_TOKENS", "false"),
            (
                "PORTAL_OIDC_KEYS_MAX_AGE_SECONDS",
                &KEYS_MAX_AGE.as_secs().to_string(),
            ),
            (
                "PORTAL_OIDC_KEYS_REFRESH_SECONDS",
                &KEYS_REFRESH.as_secs().to_string(),
            ),
        ],
    )
    .await;
    // `works`: the token is taken, and who it says the caller is.
    let works = |token: &str, why: &'static str| {
        let client = server.client(Some(token.to_string()));
        async move {
            let response = client.gql(ME, json!({})).await;
            assert!(response.get("errors").is_none(), "{why}: {response}");
            response["data"]["me"].clone()
        }
    };
    let refused = |token: &str, why: &'static str| {
        let client = server.client(Some(token.to_string()));
        async move {
            let response = client.gql(ME, json!({})).await;
            let code = &response["errors"][0]["extensions"]["code"];
            assert_eq!(code, "UNAUTHENTICATED", "{why}: {response}");
        }
    };
    let person = |client: &ClientApp, role: &str, organisation: &str| json!({ "personId": client.id.to_string(), "role": role, "organisation": organisation });

    // Each issuer's tokens: its organisation, the client as the person, the
    // role its roles map to. A's are RS256, B's ES256, typed at+jwt.
    let a_user_token = grant(&a, &a_user).await;
    assert_eq!(
        part(&a_user_token, 0),
        json!({ "alg": "RS256", "typ": "at+jwt", "kid": kid(&a_key) })
    );
    assert_eq!(
        works(&a_user_token, "A's service user").await,
        person(&a_user, "SERVICE_USER", "clinic-a")
    );
    server
        .client(Some(a_user_token.clone()))
        .data("mutation { openPortal { version } }", json!({}))
        .await;
    let a_staff_token = grant(&a, &a_staff).await;
    assert_eq!(
        works(&a_staff_token, "A's provider").await,
        person(&a_staff, "PROVIDER", "clinic-a")
    );
    let b_user_token = grant(&b, &b_user).await;
    assert_eq!(
        part(&b_user_token, 0),
        json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid(&b_key) })
    );
    assert_eq!(
        works(&b_user_token, "B's service user").await,
        person(&b_user, "SERVICE_USER", "clinic-b")
    );
    let b_staff_token = grant(&b, &b_staff).await;
    assert_eq!(
        works(&b_staff_token, "B's provider").await,
        person(&b_staff, "PROVIDER", "clinic-b")
    );

    // Signed by keys the issuer never published: a fresh key under an
    // unknown key id, or under the published one.
    let b_claims = part(&b_user_token, 1);
    let stranger = new_key("ES256").await;
    let forged = sign(&stranger, kid(&stranger), &b_claims);
    refused(&forged, "B's claims, a stranger's key").await;
    let forged = sign(&stranger, kid(&b_key), &b_claims);
    refused(&forged, "B's claims, a stranger's key under B's key id").await;
    // The same at A, and B's own key saying it is A: A does not publish B's
    // keys, so B cannot speak for clinic-a. Once KEYS_REFRESH has passed since
    // A's keys were read (for A's first token), the first of these, of an
    // unknown key id, makes Portal read them again: now, and fresh till
    // KEYS_MAX_AGE from now.
    let a_claims = part(&a_user_token, 1);
    let stranger = new_key("RS256").await;
    tokio::time::sleep(KEYS_REFRESH + Duration::from_millis(100)).await;
    let before_read = Instant::now();
    let forged = sign(&stranger, kid(&stranger), &a_claims);
    refused(&forged, "A's claims, a stranger's key").await;
    let forged = sign(&stranger, kid(&a_key), &a_claims);
    refused(&forged, "A's claims, a stranger's key under A's key id").await;
    let forged = sign(&b_key, kid(&b_key), &a_claims);
    refused(&forged, "A's claims, B's key").await;
    // The same claims signed with A's own key pass: the refusals above are
    // the keys', not the claims'.
    let resigned = sign(&a_key, kid(&a_key), &a_claims);
    works(&resigned, "A's claims signed again with A's key").await;
    let after_read = Instant::now();

    // Rotation at A: a new key first, the old one still published. The new
    // token is checked while Portal's copy of A's keys is still fresh: it
    // works only because its unknown key id makes Portal read them again.
    let port = a.port;
    a.stop().await;
    let a = start_issuer(&db.dir, "a", port, &[&a_key2, &a_key], &a_clients).await;
    let rotated = grant(&a, &a_user).await;
    assert_eq!(part(&rotated, 0)["kid"], kid(&a_key2));
    let due = after_read + KEYS_REFRESH + Duration::from_millis(100);
    tokio::time::sleep(due.saturating_duration_since(Instant::now())).await;
    assert!(
        before_read.elapsed() < KEYS_MAX_AGE,
        "too slow: A's keys would be read again for their age, not for the new key id"
    );
    assert_eq!(
        works(&rotated, "A's new key, at once").await,
        person(&a_user, "SERVICE_USER", "clinic-a")
    );
    works(&a_user_token, "A's old key, still published").await;

    // B goes down. Its people's tokens of keys read before go on working; a
    // token of the key B would publish next cannot be checked: refused.
    let b_port = b.port;
    b.stop().await;
    works(&b_user_token, "B down, its key cached").await;
    let b_next = sign(&b_key2, kid(&b_key2), &b_claims);
    refused(&b_next, "B down, a key not read yet").await;

    // A drops the old key: once Portal's copy of A's keys is KEYS_MAX_AGE old
    // (they were last read for the rotated token), its tokens are refused.
    let port = a.port;
    a.stop().await;
    let a = start_issuer(&db.dir, "a", port, &[&a_key2], &a_clients).await;
    tokio::time::sleep(KEYS_MAX_AGE + Duration::from_millis(200)).await;
    refused(&a_user_token, "A's removed key, past the cache's age").await;
    works(&rotated, "A's new key, after the old one is removed").await;

    // B still down, past the cache's age: its cached key still works, the
    // unknown one is still refused.
    works(
        &b_user_token,
        "B down, its key cached, past the cache's age",
    )
    .await;
    refused(&b_next, "B down, a key not read yet, past the cache's age").await;

    // B is back with its next key first: new tokens work, and so does the one
    // of that key refused while B was down.
    let b = start_issuer(&db.dir, "b", b_port, &[&b_key2, &b_key], &b_clients).await;
    tokio::time::sleep(KEYS_REFRESH + Duration::from_millis(100)).await;
    let b_new = grant(&b, &b_staff).await;
    assert_eq!(part(&b_new, 0)["kid"], kid(&b_key2));
    assert_eq!(
        works(&b_new, "B back, its new key").await,
        person(&b_staff, "PROVIDER", "clinic-b")
    );
    works(&b_next, "B back, the key refused while it was down").await;

    server.stop().await;
    a.stop().await;
    b.stop().await;
    eprintln!(
        "oidc_provider ({store:?}): {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

both_stores!(real_provider, a_real_provider_logs_people_in);
