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
    let body = capability::smart_configuration(&fhir.service.settings);
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
            Ok(())
        } else {
            Err(Refusal::scope(kind))
        }
    }

    /// The data of a GraphQL query run for the caller, or its first error.
    async fn query(&self, document: &str, variables: Value) -> Result<Value, Refusal> {
        let request = async_graphql::Request::new(document)
            .variables(async_graphql::Variables::from_json(variables))
            .data(self.context.clone());
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
        let resource = read_one(&run, &kind, &id).await?;
        Ok((run, resource))
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
    if !served(&kind) {
        return unsupported(&kind).into_response();
    }
    let Ok(Query(params)) = params else {
        return Refusal::bad("the search parameters could not be read").into_response();
    };
    let search = match search::parse(&params) {
        Ok(search) => search,
        Err(message) => return Refusal::bad(&message).into_response(),
    };
    let base = base_url(&headers);
    let asked = kind.clone();
    serve(&fhir, connect, &headers, &asked, |run| async move {
        let matches = search_all(&run, &kind, &search).await?;
        let bundle = bundle(&base, &kind, &params, &search, matches);
        Ok((run, bundle))
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
    Fut: std::future::Future<Output = Result<(Run<'a>, Value), Refusal>>,
{
    if !served(kind) {
        return unsupported(kind).into_response();
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match fhir.service.auth.verify_header(authorization).await {
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
        return Refusal::scope(kind).into_response();
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
        Ok((_, body)) => fhir_json(StatusCode::OK, &body),
        Err(refusal) => refusal.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Whether the facade serves resource type `kind`.
fn served(kind: &str) -> bool {
    domain::smart::RESOURCES.iter().any(|(k, _)| *k == kind)
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

/// One resource by its id.
async fn read_one(run: &Run<'_>, kind: &str, id: &str) -> Result<Value, Refusal> {
    let read = Interaction::Read;
    match kind {
        "Patient" => {
            let patient = Uuid::parse_str(id).map_err(|_| not_found(kind, id))?;
            run.allow(kind, read, patient)?;
            patient_of(run, patient).await
        }
        "Goal" | "CarePlan" => {
            let (patient, goal) = r::parse_pair(id).ok_or_else(|| not_found(kind, id))?;
            run.allow(kind, read, patient)?;
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
            let (patient, _) = r::parse_pair(id).ok_or_else(|| not_found(kind, id))?;
            run.allow(kind, read, patient)?;
            medications(run, patient)
                .await?
                .into_iter()
                .find(|m| m["id"] == id)
                .ok_or_else(|| not_found(kind, id))
        }
        "Consent" => {
            let (relationship, number) =
                r::parse_numbered(id).ok_or_else(|| not_found(kind, id))?;
            // Whose it is shows once it is read: the scope is checked then.
            let consents = consents_of(run, None, Some(relationship)).await?;
            let found = consents
                .into_iter()
                .find(|c| c["id"] == r::numbered_id(relationship, number))
                .ok_or_else(|| not_found(kind, id))?;
            run.allow(kind, read, patient_in(&found["patient"])?)?;
            Ok(found)
        }
        "Communication" => {
            let (conversation, message) = r::parse_pair(id).ok_or_else(|| not_found(kind, id))?;
            let found = messages_of(run, conversation)
                .await?
                .into_iter()
                .find(|c| c["id"] == r::pair_id(conversation, message))
                .ok_or_else(|| not_found(kind, id))?;
            run.allow(kind, read, patient_in(&found["subject"])?)?;
            Ok(found)
        }
        "AuditEvent" => {
            let (patient, position) = r::parse_numbered(id).ok_or_else(|| not_found(kind, id))?;
            run.allow(kind, read, patient)?;
            audit_events(run, patient)
                .await?
                .into_iter()
                .find(|e| e["id"] == r::numbered_id(patient, position))
                .ok_or_else(|| not_found(kind, id))
        }
        _ => Err(not_found(kind, id)),
    }
}

/// The patient a reference names.
fn patient_in(reference: &Value) -> Result<Uuid, Refusal> {
    reference["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| Refusal::of_code(codes::INTERNAL, "internal error"))
}

/// Every match of a search, oldest change first, before paging.
async fn search_all(run: &Run<'_>, kind: &str, search: &Search) -> Result<Vec<Value>, Refusal> {
    let interaction = Interaction::Search;
    // A service user's searches are of their own data by default.
    let patient = match (search.patient, kind) {
        (Some(p), _) => p,
        (None, "Patient") => match search.id.as_deref().map(Uuid::parse_str) {
            Some(Ok(p)) => p,
            Some(Err(_)) => return Ok(Vec::new()),
            None if run.caller.role == Role::ServiceUser => run.caller.subject,
            None => return Err(Refusal::bad("a Patient search names the patient: `_id`")),
        },
        (None, _) if run.caller.role == Role::ServiceUser => run.caller.subject,
        (None, _) => {
            return Err(Refusal::bad(&format!(
                "a {kind} search names the patient: `patient=Patient/<id>`"
            )))
        }
    };
    run.allow(kind, interaction, patient)?;
    let mut found = match kind {
        "Patient" => vec![patient_of(run, patient).await?],
        "Goal" | "CarePlan" => {
            let document = format!(
                "query($p: ID!) {{ goals(portalId: $p, includeClosed: true) {{ {} }} }}",
                r::GOAL_FIELDS
            );
            let data = run.query(&document, json!({ "p": patient })).await?;
            let goals = data["goals"].as_array().cloned().unwrap_or_default();
            goals
                .iter()
                .map(|g| {
                    if kind == "Goal" {
                        r::goal(patient, g)
                    } else {
                        r::care_plan(patient, g)
                    }
                })
                .collect()
        }
        "MedicationStatement" => medications(run, patient).await?,
        "Consent" => consents_of(run, Some(patient), None).await?,
        "Communication" => communications(run, patient).await?,
        "AuditEvent" => audit_events(run, patient).await?,
        _ => Vec::new(),
    };
    if let Some(id) = &search.id {
        found.retain(|resource| resource["id"].as_str() == Some(id.as_str()));
    }
    found.retain(|resource| r::last_updated(resource).is_none_or(|at| search.updated_within(at)));
    found.sort_by_key(r::last_updated);
    Ok(found)
}

/// A searchset Bundle of the page the search asks for, with links to the
/// pages around it.
fn bundle(
    base: &str,
    kind: &str,
    params: &[(String, String)],
    search: &Search,
    matches: Vec<Value>,
) -> Value {
    let total = matches.len();
    let link = |offset: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in params
            .iter()
            .filter(|(n, _)| n != "_offset" && n != "_count")
        {
            query.append_pair(name, value);
        }
        query.append_pair("_count", &search.count.to_string());
        query.append_pair("_offset", &offset.to_string());
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
    json!({
        "resourceType": "Bundle",
        "id": Uuid::new_v4().to_string(),
        "meta": { "lastUpdated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) },
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    })
}

async fn patient_of(run: &Run<'_>, patient: Uuid) -> Result<Value, Refusal> {
    let document = format!(
        "query($p: ID!) {{ controlPanel(portalId: $p) {{ {} }} }}",
        r::PATIENT_FIELDS
    );
    let data = run.query(&document, json!({ "p": patient })).await?;
    Ok(r::patient(&data["controlPanel"]))
}

async fn medications(run: &Run<'_>, patient: Uuid) -> Result<Vec<Value>, Refusal> {
    let document = format!(
        "query($p: ID!) {{ medications(portalId: $p, includeStopped: true) {{ {} }} }}",
        r::MEDICATION_FIELDS
    );
    let data = run.query(&document, json!({ "p": patient })).await?;
    Ok(data["medications"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| r::medication_statement(patient, m))
        .collect())
}

/// The caller's relationships' grants, of one patient or of one
/// relationship, as Consents.
async fn consents_of(
    run: &Run<'_>,
    patient: Option<Uuid>,
    relationship: Option<Uuid>,
) -> Result<Vec<Value>, Refusal> {
    let document = format!(
        "query($after: String) {{ careRelationships(includeClosed: true, first: 100, after: $after) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }}",
        r::RELATIONSHIP_FIELDS
    );
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = run.query(&document, json!({ "after": after })).await?;
        let page = &data["careRelationships"];
        for rel in page["nodes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let user = rel["userId"].as_str().and_then(|u| Uuid::parse_str(u).ok());
            let id = rel["uuid"].as_str().and_then(|u| Uuid::parse_str(u).ok());
            if patient.is_some_and(|p| user != Some(p))
                || relationship.is_some_and(|r| id != Some(r))
            {
                continue;
            }
            out.extend(r::consents(rel, now));
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) || out.len() > search::MATCHES_MAX {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    too_many(out)
}

/// Refuses a search whose matches pass [`search::MATCHES_MAX`].
fn too_many(found: Vec<Value>) -> Result<Vec<Value>, Refusal> {
    if found.len() > search::MATCHES_MAX {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            codes::BAD_USER_INPUT,
            "too-costly",
            &format!(
                "more than {} matches: narrow the search with _lastUpdated",
                search::MATCHES_MAX
            ),
        ));
    }
    Ok(found)
}

/// Every message of the patient's conversations the caller takes part in.
async fn communications(run: &Run<'_>, patient: Uuid) -> Result<Vec<Value>, Refusal> {
    let list = "query($after: String) { conversations { conversations(first: 100, after: $after) { nodes { uuid userId } pageInfo { hasNextPage endCursor } } } }";
    let mut conversations = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = run.query(list, json!({ "after": after })).await?;
        let page = &data["conversations"]["conversations"];
        for c in page["nodes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if c["userId"].as_str().and_then(|u| Uuid::parse_str(u).ok()) == Some(patient) {
                if let Some(id) = c["uuid"].as_str().and_then(|u| Uuid::parse_str(u).ok()) {
                    conversations.push(id);
                }
            }
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let mut out = Vec::new();
    for conversation in conversations {
        out.extend(messages_of(run, conversation).await?);
        if out.len() > search::MATCHES_MAX {
            break;
        }
    }
    too_many(out)
}

/// Every message of one conversation, as Communications.
async fn messages_of(run: &Run<'_>, conversation: Uuid) -> Result<Vec<Value>, Refusal> {
    let document = format!(
        "query($c: ID!, $after: String) {{ conversation(conversationId: $c) {{ {} messages(first: 100, after: $after) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }} }}",
        r::CONVERSATION_FIELDS,
        r::MESSAGE_FIELDS
    );
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = run
            .query(&document, json!({ "c": conversation, "after": after }))
            .await?;
        let c = &data["conversation"];
        let page = &c["messages"];
        for m in page["nodes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            out.push(r::communication(c, m));
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) || out.len() > search::MATCHES_MAX {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    Ok(out)
}

/// The access trail of the patient's data as AuditEvents: the patient's own
/// log for the patient, the organisation's trail for an auditor.
async fn audit_events(run: &Run<'_>, patient: Uuid) -> Result<Vec<Value>, Refusal> {
    let own = run.caller.subject == patient && run.caller.role == Role::ServiceUser;
    let (document, path): (String, [&str; 2]) = if own {
        (
            format!("query($after: String) {{ myAccessLog {{ entries(first: 500, after: $after) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }} }}", r::ACCESS_FIELDS),
            ["myAccessLog", "entries"],
        )
    } else {
        (
            format!("query($p: ID!, $after: String) {{ accessTrail(subjectId: $p, first: 500, after: $after) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }}", r::ACCESS_FIELDS),
            ["accessTrail", ""],
        )
    };
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let variables = if own {
            json!({ "after": after })
        } else {
            json!({ "p": patient, "after": after })
        };
        let data = run.query(&document, variables).await?;
        let page = if path[1].is_empty() {
            &data[path[0]]
        } else {
            &data[path[0]][path[1]]
        };
        for e in page["nodes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            out.push(r::audit_event(patient, e));
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) || out.len() > search::MATCHES_MAX {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    too_many(out)
}
