//! An HL7 FHIR R4 read facade at `/fhir/R4`, for providers' systems:
//! `metadata`, SMART's `.well-known/smart-configuration`, and read and
//! search of Patient, Goal, CarePlan, MedicationStatement, Consent,
//! Communication and AuditEvent (see `docs/fhir.md`).
//!
//! Each FHIR request runs as GraphQL queries of the same schema, for the
//! same caller, within the same request machinery: the same rules decide
//! (the consent rules of `domain::access`, the parties of a conversation,
//! the access log's readers), a provider's read is recorded in the access
//! trail under its grant (or as refused), and nothing leaves before its
//! records are written. On top, the token's SMART scopes
//! (`domain::smart`) must allow the resource type: a scope never widens
//! what consent allows, it only narrows it.

pub mod capability;
pub mod resources;
pub mod search;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::smart::{Interaction, Scopes, Whose};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::context::{Receipts, RequestContext};
use crate::error::codes;
use crate::ids::NodeId;
use crate::limits::Limited;
use crate::schema::PortalSchema;
use crate::service::Service;
use async_graphql::Executor;
use resources as r;
use search::Search;

/// FHIR's media type for JSON.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// What the facade needs of the HTTP layer.
#[derive(Clone)]
pub struct Fhir {
    pub service: Arc<Service>,
    pub schema: Limited<PortalSchema>,
    /// Requests being answered, per person (shared with `/graphql`).
    pub in_flight: Arc<crate::rate::Holds<(String, Uuid)>>,
    /// Parsed GraphQL documents (shared with `/graphql`): the facade's few
    /// queries are parsed once.
    pub(crate) documents: Arc<crate::documents::Documents>,
    /// When this process started: the CapabilityStatement's date.
    pub started: chrono::DateTime<chrono::Utc>,
}

/// The routes under `/fhir/R4`.
pub fn router(fhir: Fhir) -> Router {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route("/{kind}", get(search_type))
        .route("/{kind}/{id}", get(read))
        .fallback(|| async {
            Refusal::new(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                "not-supported",
                "no such FHIR interaction here: see /fhir/R4/metadata",
            )
            .into_response()
        })
        .with_state(fhir)
}

/// A refusal, as an OperationOutcome with our stable error code.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    code: &'static str,
    issue: &'static str,
    message: String,
    /// `WWW-Authenticate` for 401 and 403 (RFC 6750).
    challenge: Option<&'static str>,
}

/// The code system of our stable error codes in an OperationOutcome.
pub const ERROR_CODES: &str = "urn:portal:error-code";

impl Refusal {
    fn new(status: StatusCode, code: &'static str, issue: &'static str, message: &str) -> Self {
        Refusal {
            status,
            code,
            issue,
            message: message.to_string(),
            challenge: None,
        }
    }

    fn bad(message: &str) -> Self {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            codes::BAD_USER_INPUT,
            "invalid",
            message,
        )
    }

    fn not_found(message: &str) -> Self {
        Refusal::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            "not-found",
            message,
        )
    }

    fn scope(kind: &str) -> Self {
        Refusal {
            challenge: Some("Bearer error=\"insufficient_scope\""),
            ..Refusal::new(
                StatusCode::FORBIDDEN,
                codes::FORBIDDEN,
                "forbidden",
                &format!("the token's SMART scopes do not allow this on {kind} for this patient"),
            )
        }
    }

    /// A GraphQL error's code, answered with the HTTP status and FHIR issue
    /// type that mean the same.
    fn of_code(code: &str, message: &str) -> Self {
        let (status, code, issue) = match code {
            codes::UNAUTHENTICATED => (StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, "login"),
            codes::FORBIDDEN => (StatusCode::FORBIDDEN, codes::FORBIDDEN, "forbidden"),
            codes::NOT_FOUND => (StatusCode::NOT_FOUND, codes::NOT_FOUND, "not-found"),
            codes::BAD_USER_INPUT => (StatusCode::BAD_REQUEST, codes::BAD_USER_INPUT, "invalid"),
            codes::RATE_LIMITED => (
                StatusCode::TOO_MANY_REQUESTS,
                codes::RATE_LIMITED,
                "throttled",
            ),
            codes::FAILED_PRECONDITION => (
                StatusCode::CONFLICT,
                codes::FAILED_PRECONDITION,
                "business-rule",
            ),
            codes::TIMEOUT => (StatusCode::GATEWAY_TIMEOUT, codes::TIMEOUT, "timeout"),
            _ => {
                return Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL,
                    "exception",
                    "internal error",
                )
            }
        };
        let mut refusal = Refusal::new(status, code, issue, message);
        if status == StatusCode::UNAUTHORIZED {
            refusal.challenge = Some("Bearer");
        }
        refusal
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let outcome = json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": self.issue,
                "details": {
                    "coding": [{ "system": ERROR_CODES, "code": self.code }],
                    "text": self.message,
                },
                "diagnostics": self.message,
            }],
        });
        let mut response = fhir_json(self.status, &outcome);
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

fn fhir_json(status: StatusCode, body: &Value) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, FHIR_JSON)], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /fhir/R4/metadata`: the CapabilityStatement (no token needed).
async fn metadata(State(fhir): State<Fhir>, headers: HeaderMap) -> Response {
    fhir_json(
        StatusCode::OK,
        &capability::statement(&base_url(&headers), fhir.started),
    )
}

/// `GET /fhir/R4/.well-known/smart-configuration`.
async fn smart_configuration(State(fhir): State<Fhir>) -> Response {
    let endpoints = fhir.service.auth.smart_endpoints().await;
    let body = capability::smart_configuration(&fhir.service.settings, endpoints);
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// The base of the links a Bundle gives: the `Host` the client used, over
/// https when a proxy in front says so (`X-Forwarded-Proto`).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}/fhir/R4")
}

/// One FHIR request's run: its caller, scopes and the GraphQL queries it
/// makes, whose access-trail records its answer waits for.
struct Run<'a> {
    fhir: &'a Fhir,
    caller: Caller,
    scopes: Scopes,
    context: RequestContext,
}

impl Run<'_> {
    /// Whether the scopes let the caller do `interaction` on `kind` about
    /// `patient`'s data.
    fn allow(&self, kind: &str, interaction: Interaction, patient: Uuid) -> Result<(), Refusal> {
        let launch = (self.caller.role == Role::ServiceUser && self.caller.subject == patient)
            || self.caller.patient == Some(patient);
        let whose = if launch {
            Whose::LaunchPatient
        } else {
            Whose::AnyPatient
        };
        if self.scopes.allow(kind, interaction, whose) {
            return Ok(());
        }
        Err(scope_refused(self.fhir, &self.caller, kind))
    }

    /// The data of a GraphQL query run for the caller, or its first error.
    async fn query(&self, document: &str, variables: Value) -> Result<Value, Refusal> {
        let request = async_graphql::Request::new(document)
            .variables(async_graphql::Variables::from_json(variables))
            .data(self.context.clone());
        let request = self.fhir.documents.prepare(request);
        let response = self.fhir.schema.execute(request).await;
        if let Some(error) = response.errors.first() {
            let code = error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(|c| match c {
                    async_graphql::Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            if code.is_empty() || code == codes::INTERNAL {
                tracing::error!(message = %error.message, "a FHIR request's query failed");
            }
            return Err(Refusal::of_code(&code, &error.message));
        }
        response
            .data
            .into_json()
            .map_err(|_| Refusal::of_code(codes::INTERNAL, "internal error"))
    }
}

/// `GET /fhir/R4/{kind}/{id}`.
async fn read(
    State(fhir): State<Fhir>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    let asked = kind.clone();
    serve(&fhir, connect, &headers, &asked, |run| async move {
        read_one(&run, &kind, &id).await
    })
    .await
}

/// `GET /fhir/R4/{kind}?...`.
async fn search_type(
    State(fhir): State<Fhir>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    params: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let base = base_url(&headers);
    let asked = kind.clone();
    serve(&fhir, connect, &headers, &asked, |run| async move {
        let Ok(Query(params)) = params else {
            return Err(Refusal::bad("the search parameters could not be read"));
        };
        let mut search = search::parse(&params).map_err(|message| Refusal::bad(&message))?;
        // Every page of a search shows the matches as they stood at its
        // first page: records made since (this search's own reads of the
        // trail among them) wait for a new search.
        let snapshot = *search.snapshot.get_or_insert_with(|| {
            // As the links carry it: to the microsecond.
            let now = chrono::Utc::now();
            now - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1000))
        });
        let matches = search_all(&run, &kind, &search).await?;
        Ok(bundle(&base, &kind, &params, &search, snapshot, matches))
    })
    .await
}

/// Authenticates, bounds, runs `work` and answers once the access trail
/// holds every record the run made.
async fn serve<'a, F, Fut>(
    fhir: &'a Fhir,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: &HeaderMap,
    kind: &str,
    work: F,
) -> Response
where
    F: FnOnce(Run<'a>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, Refusal>>,
{
    if !served(kind) {
        return unsupported(kind).into_response();
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match fhir.service.auth.verify_fhir_header(authorization).await {
        Ok(caller) => caller,
        Err(_) => {
            return Refusal::of_code(
                codes::UNAUTHENTICATED,
                "a valid bearer token with SMART scopes is needed",
            )
            .into_response()
        }
    };
    let scopes = Scopes::parse(caller.scope.as_deref().unwrap_or_default());
    if scopes.is_empty() {
        return scope_refused(fhir, &caller, kind).into_response();
    }
    let max = fhir.service.settings.server.requests_in_flight_per_person;
    let Some(_held) = fhir
        .in_flight
        .hold((caller.organisation.clone(), caller.subject), max)
    else {
        return Refusal::of_code(
            codes::RATE_LIMITED,
            "too many requests of yours at once: wait for an answer first",
        )
        .into_response();
    };
    let request_id = Uuid::new_v4().to_string();
    let receipts = Arc::new(Receipts::default());
    let context = RequestContext {
        caller: Ok(caller.clone()),
        request_id: request_id.clone(),
        client_address: connect.map(|c| c.0 .0.ip().to_string()),
        receipts: Arc::clone(&receipts),
        over_websocket: false,
        clock: crate::clock::Clock::Wall,
        read_after: None,
    };
    let run = Run {
        fhir,
        caller,
        scopes,
        context,
    };
    let answer = work(run).await;
    // Nothing leaves before its access-trail records are committed,
    // refusals included.
    if let Err(error) = receipts.written().await {
        tracing::error!(%error, %request_id, "FHIR answer withheld: access trail not written");
        return Refusal::of_code(codes::INTERNAL, "internal error").into_response();
    }
    let mut response = match answer {
        Ok(body) => fhir_json(StatusCode::OK, &body),
        Err(refusal) => refusal.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The answer to a request its token's scopes do not allow, counted against
/// the reader's refusals as the consent rules' are
/// (`server.refusals_per_minute`): probing with a narrow token is bounded
/// too. It reads nothing, and is not recorded in the trail.
fn scope_refused(fhir: &Fhir, caller: &Caller, kind: &str) -> Refusal {
    match fhir
        .service
        .refusal_limit
        .take(&caller.organisation, caller.subject)
    {
        Ok(()) => Refusal::scope(kind),
        Err(limited) => Refusal::of_code(limited.code(), &limited.message()),
    }
}

/// Whether the facade serves resource type `kind`.
fn served(kind: &str) -> bool {
    domain::smart::RESOURCES.contains(&kind)
}

fn unsupported(kind: &str) -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        "not-supported",
        &format!("resource type `{kind}` is not served here: see /fhir/R4/metadata"),
    )
}

fn not_found(kind: &str, id: &str) -> Refusal {
    Refusal::not_found(&format!("{kind}/{id} is not known, or not yours to read"))
}

/// An answer that cannot be: logged, and a plain internal error for the client.
fn broken(what: &str) -> Refusal {
    tracing::error!(what, "a FHIR answer could not be made");
    Refusal::of_code(codes::INTERNAL, "internal error")
}

/// One resource by its id: each fetched directly, never by scanning a list
/// (but an access-trail record, found by paging the patient's trail).
async fn read_one(run: &Run<'_>, kind: &str, id: &str) -> Result<Value, Refusal> {
    let interaction = Interaction::Read;
    match kind {
        "Patient" => {
            let patient = Uuid::parse_str(id).map_err(|_| not_found(kind, id))?;
            run.allow(kind, interaction, patient)?;
            patient_of(run, patient).await
        }
        "Goal" | "CarePlan" => {
            let (patient, goal) = r::parse_pair(id).ok_or_else(|| not_found(kind, id))?;
            run.allow(kind, interaction, patient)?;
            let document = format!(
                "query($g: ID!, $p: ID!) {{ goal(goalId: $g, portalId: $p) {{ {} }} }}",
                r::GOAL_FIELDS
            );
            let data = run
                .query(&document, json!({ "g": goal, "p": patient }))
                .await?;
            Ok(if kind == "Goal" {
                r::goal(patient, &data["goal"])
            } else {
                r::care_plan(patient, &data["goal"])
            })
        }
        "MedicationStatement" => {
            let (patient, medication) = r::parse_pair(id).ok_or_else(|| not_found(kind, id))?;
            run.allow(kind, interaction, patient)?;
            let node = NodeId::Medication {
                portal: patient,
                medication,
            }
            .id();
            let document = format!(
                "query($m: ID!) {{ node(id: $m) {{ ... on Medication {{ {} }} }} }}",
                r::MEDICATION_FIELDS
            );
            let data = run.query(&document, json!({ "m": node.as_str() })).await?;
            if data["node"].is_null() {
                return Err(not_found(kind, id));
            }
            Ok(r::medication_statement(patient, &data["node"]))
        }
        "Consent" => {
            let (relationship, number) =
                r::parse_numbered(id).ok_or_else(|| not_found(kind, id))?;
            let node = NodeId::Relationship { relationship }.id();
            let document = format!(
                "query($r: ID!) {{ node(id: $r) {{ ... on Relationship {{ {} }} }} }}",
                r::RELATIONSHIP_FIELDS
            );
            let data = run.query(&document, json!({ "r": node.as_str() })).await?;
            let found = r::consents(&data["node"], chrono::Utc::now())
                .into_iter()
                .find(|c| c["id"] == r::numbered_id(relationship, number))
                .ok_or_else(|| not_found(kind, id))?;
            // Whose it is shows once it is read; nothing leaves before the
            // scopes allow it.
            run.allow(kind, interaction, patient_in(&found["patient"])?)?;
            Ok(found)
        }
        "Communication" => {
            let (conversation, message) = r::parse_pair(id).ok_or_else(|| not_found(kind, id))?;
            let node = NodeId::Message {
                conversation,
                message,
            }
            .id();
            let document = format!(
                "query($c: ID!, $m: ID!) {{ conversation(conversationId: $c) {{ {} }} node(id: $m) {{ ... on Message {{ {} }} }} }}",
                r::CONVERSATION_FIELDS,
                r::MESSAGE_FIELDS
            );
            let data = run
                .query(&document, json!({ "c": conversation, "m": node.as_str() }))
                .await?;
            if data["node"].is_null() {
                return Err(not_found(kind, id));
            }
            let found = r::communication(&data["conversation"], &data["node"]);
            run.allow(kind, interaction, patient_in(&found["subject"])?)?;
            Ok(found)
        }
        "AuditEvent" => {
            let (patient, position) = r::parse_numbered(id).ok_or_else(|| not_found(kind, id))?;
            run.allow(kind, interaction, patient)?;
            let wanted = r::numbered_id(patient, position);
            let mut found = None;
            audit_events(run, patient, &mut |event| {
                if event["id"] == wanted.as_str() {
                    found = Some(event);
                    return Gather::Stop;
                }
                Gather::Go
            })
            .await?;
            found.ok_or_else(|| not_found(kind, id))
        }
        _ => Err(unsupported(kind)),
    }
}

/// The patient a reference names.
fn patient_in(reference: &Value) -> Result<Uuid, Refusal> {
    reference["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| broken("a resource without its patient"))
}

/// Whether a gathering goes on after a resource.
#[derive(PartialEq, Eq)]
enum Gather {
    Go,
    Stop,
}

/// Every match of a search, oldest change first, before paging: at most
/// [`search::MATCHES_MAX`] after `_lastUpdated` and the snapshot applied.
async fn search_all(run: &Run<'_>, kind: &str, search: &Search) -> Result<Vec<Value>, Refusal> {
    let interaction = Interaction::Search;
    // A service user's searches are of their own data by default, as are
    // those of a token with a patient context.
    let own = match run.caller.role {
        Role::ServiceUser => Some(run.caller.subject),
        _ => run.caller.patient,
    };
    let patient = match (kind, search.patient, search.id.as_deref()) {
        ("Patient", Some(_), _) => {
            return Err(Refusal::bad("a Patient search takes `_id`, not `patient`"))
        }
        ("Patient", None, Some(id)) => match Uuid::parse_str(id) {
            Ok(patient) => patient,
            Err(_) => return Ok(Vec::new()),
        },
        (_, Some(patient), _) => patient,
        (_, None, _) => own.ok_or_else(|| {
            Refusal::bad(&format!(
                "a {kind} search names the patient: {}",
                if kind == "Patient" {
                    "`_id`"
                } else {
                    "`patient=Patient/<id>`"
                }
            ))
        })?,
    };
    run.allow(kind, interaction, patient)?;
    let mut found = Vec::new();
    let mut too_many = false;
    // A Patient's `_id` was read as a uuid (any spelling of it).
    let wanted = match kind {
        "Patient" => Some(patient.to_string()),
        _ => search.id.clone(),
    };
    // Each match with its `meta.lastUpdated`, read once.
    let mut keep = |resource: Value| {
        let id_matches = wanted
            .as_deref()
            .is_none_or(|id| resource["id"].as_str() == Some(id));
        let updated = r::last_updated(&resource);
        if id_matches && search.keeps(updated) {
            if found.len() == search::MATCHES_MAX {
                too_many = true;
                return Gather::Stop;
            }
            found.push((updated, resource));
        }
        Gather::Go
    };
    match kind {
        "Patient" => {
            keep(patient_of(run, patient).await?);
        }
        "Goal" | "CarePlan" => {
            let document = format!(
                "query($p: ID!) {{ goals(portalId: $p, includeClosed: true) {{ {} }} }}",
                r::GOAL_FIELDS
            );
            let data = run.query(&document, json!({ "p": patient })).await?;
            for g in data["goals"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                keep(if kind == "Goal" {
                    r::goal(patient, g)
                } else {
                    r::care_plan(patient, g)
                });
            }
        }
        "MedicationStatement" => {
            let document = format!(
                "query($p: ID!) {{ medications(portalId: $p, includeStopped: true) {{ {} }} }}",
                r::MEDICATION_FIELDS
            );
            let data = run.query(&document, json!({ "p": patient })).await?;
            for m in data["medications"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                keep(r::medication_statement(patient, m));
            }
        }
        "Consent" => consents_of(run, patient, search.snapshot, &mut keep).await?,
        "Communication" => communications(run, patient, &mut keep).await?,
        "AuditEvent" => audit_events(run, patient, &mut keep).await?,
        _ => return Err(unsupported(kind)),
    }
    if too_many {
        return Err(too_costly());
    }
    // Stable, as before: equal times keep the order they were read in.
    found.sort_by_key(|(updated, _)| *updated);
    Ok(found.into_iter().map(|(_, resource)| resource).collect())
}

/// A searchset Bundle of the page the search asks for, with links to the
/// pages around it (each carrying the first page's snapshot).
fn bundle(
    base: &str,
    kind: &str,
    params: &[(String, String)],
    search: &Search,
    snapshot: chrono::DateTime<chrono::Utc>,
    matches: Vec<Value>,
) -> Value {
    let total = matches.len();
    let link = |offset: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in params
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "_offset" | "_count" | "_snapshot"))
        {
            query.append_pair(name, value);
        }
        query.append_pair("_count", &search.count.to_string());
        query.append_pair("_offset", &offset.to_string());
        query.append_pair(
            "_snapshot",
            &snapshot.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        );
        format!("{base}/{kind}?{}", query.finish())
    };
    let mut links = vec![
        json!({ "relation": "self", "url": link(search.offset) }),
        json!({ "relation": "first", "url": link(0) }),
    ];
    if search.offset > 0 {
        links.push(json!({ "relation": "previous", "url": link(search.offset.saturating_sub(search.count)) }));
    }
    if search.offset + search.count < total {
        links.push(json!({ "relation": "next", "url": link(search.offset + search.count) }));
    }
    let entries: Vec<Value> = matches
        .into_iter()
        .skip(search.offset)
        .take(search.count)
        .map(|resource| {
            json!({
                "fullUrl": format!("{base}/{}/{}", resource["resourceType"].as_str().unwrap_or(kind), resource["id"].as_str().unwrap_or_default()),
                "resource": resource,
                "search": { "mode": "match" },
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": Uuid::new_v4().to_string(),
        "meta": { "lastUpdated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) },
        "type": "searchset",
        "total": total,
        "link": links,
    });
    // FHIR's JSON has no empty arrays.
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

async fn patient_of(run: &Run<'_>, patient: Uuid) -> Result<Value, Refusal> {
    let document = format!(
        "query($p: ID!) {{ controlPanel(portalId: $p) {{ {} }} }}",
        r::PATIENT_FIELDS
    );
    let data = run.query(&document, json!({ "p": patient })).await?;
    Ok(r::patient(&data["controlPanel"]))
}

/// Most pages one gathering reads from a GraphQL connection.
const PAGES_MAX: usize = 200;

/// Pages through the connection at `path` of `document` (which takes
/// `$after`), handing each node to `each`, until the end, `each` stops, or
/// [`PAGES_MAX`] pages; a cursor that does not move ends it too.
async fn paged(
    run: &Run<'_>,
    document: &str,
    mut variables: Value,
    path: &[&str],
    each: &mut (dyn FnMut(&Value, &Value) -> Gather + Send),
) -> Result<(), Refusal> {
    let mut after = Value::Null;
    for _ in 0..PAGES_MAX {
        variables["after"] = after.clone();
        let data = run.query(document, variables.clone()).await?;
        let mut page = &data;
        let mut parent = &data;
        for field in path {
            parent = page;
            page = &page[*field];
        }
        for node in page["nodes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if each(parent, node) == Gather::Stop {
                return Ok(());
            }
        }
        let next = &page["pageInfo"]["endCursor"];
        if page["pageInfo"]["hasNextPage"] != json!(true) || next.is_null() || *next == after {
            return Ok(());
        }
        after = next.clone();
    }
    // Pages left unread: refused rather than answered short.
    Err(too_costly())
}

/// A search that would read or keep more than the facade allows.
fn too_costly() -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        codes::BAD_USER_INPUT,
        "too-costly",
        &format!(
            "more than {} matches, or more than {PAGES_MAX} pages to read: narrow the search with _lastUpdated",
            search::MATCHES_MAX
        ),
    )
}

/// The grants of the caller's relationship with the patient, as Consents:
/// a service user's relationships with the patient's providers, or the
/// provider's own relationship with them.
async fn consents_of(
    run: &Run<'_>,
    patient: Uuid,
    at: Option<chrono::DateTime<chrono::Utc>>,
    keep: &mut (dyn FnMut(Value) -> Gather + Send),
) -> Result<(), Refusal> {
    // In force or not as at the search's snapshot, on every page alike.
    let now = at.unwrap_or_else(chrono::Utc::now);
    if run.caller.role == Role::Provider {
        // The one relationship of this provider and this patient.
        let relationship = domain::care::relationship_id(patient, run.caller.subject);
        let document = format!(
            "query($r: ID!) {{ node(id: $r) {{ ... on Relationship {{ {} }} }} }}",
            r::RELATIONSHIP_FIELDS
        );
        let node = NodeId::Relationship { relationship }.id();
        let data = match run.query(&document, json!({ "r": node.as_str() })).await {
            Err(refusal) if refusal.status == StatusCode::NOT_FOUND => return Ok(()),
            answer => answer?,
        };
        for consent in r::consents(&data["node"], now) {
            if keep(consent) == Gather::Stop {
                break;
            }
        }
        return Ok(());
    }
    let document = format!(
        "query($after: String) {{ careRelationships(includeClosed: true, first: 100, after: $after) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }}",
        r::RELATIONSHIP_FIELDS
    );
    let mut stop = Gather::Go;
    paged(
        run,
        &document,
        json!({}),
        &["careRelationships"],
        &mut |_, rel| {
            if rel["userId"].as_str().and_then(|u| Uuid::parse_str(u).ok()) != Some(patient) {
                return Gather::Go;
            }
            for consent in r::consents(rel, now) {
                if keep(consent) == Gather::Stop {
                    stop = Gather::Stop;
                    break;
                }
            }
            if stop == Gather::Stop {
                Gather::Stop
            } else {
                Gather::Go
            }
        },
    )
    .await
}

/// Every message of the patient's conversations the caller takes part in.
async fn communications(
    run: &Run<'_>,
    patient: Uuid,
    keep: &mut (dyn FnMut(Value) -> Gather + Send),
) -> Result<(), Refusal> {
    let list = "query($after: String) { conversations { conversations(first: 100, after: $after) { nodes { uuid userId } pageInfo { hasNextPage endCursor } } } }";
    let mut conversations = Vec::new();
    paged(
        run,
        list,
        json!({}),
        &["conversations", "conversations"],
        &mut |_, c| {
            if c["userId"].as_str().and_then(|u| Uuid::parse_str(u).ok()) == Some(patient) {
                if let Some(id) = c["uuid"].as_str().and_then(|u| Uuid::parse_str(u).ok()) {
                    conversations.push(id);
                }
            }
            Gather::Go
        },
    )
    .await?;
    let document = format!(
        "query($c: ID!, $after: String) {{ conversation(conversationId: $c) {{ {} messages(first: 100, after: $after) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }} }}",
        r::CONVERSATION_FIELDS,
        r::MESSAGE_FIELDS
    );
    for conversation in conversations {
        let mut stop = false;
        paged(
            run,
            &document,
            json!({ "c": conversation }),
            &["conversation", "messages"],
            &mut |c, m| {
                let go = keep(r::communication(c, m));
                stop = go == Gather::Stop;
                go
            },
        )
        .await?;
        if stop {
            break;
        }
    }
    Ok(())
}

/// The access trail of the patient's data as AuditEvents: the patient's own
/// log for the patient, the organisation's trail for an auditor.
async fn audit_events(
    run: &Run<'_>,
    patient: Uuid,
    keep: &mut (dyn FnMut(Value) -> Gather + Send),
) -> Result<(), Refusal> {
    let own = run.caller.subject == patient && run.caller.role == Role::ServiceUser;
    let page = format!(
        "nodes {{ {} }} pageInfo {{ hasNextPage endCursor }}",
        r::ACCESS_FIELDS
    );
    let (document, variables, path): (String, Value, &[&str]) = if own {
        (
            format!("query($after: String) {{ myAccessLog {{ entries(first: 250, after: $after) {{ {page} }} }} }}"),
            json!({}),
            &["myAccessLog", "entries"],
        )
    } else {
        (
            format!("query($p: ID!, $after: String) {{ accessTrail(subjectId: $p, first: 250, after: $after) {{ {page} }} }}"),
            json!({ "p": patient }),
            &["accessTrail"],
        )
    };
    paged(run, &document, variables, path, &mut |_, e| {
        keep(r::audit_event(patient, e))
    })
    .await
}
