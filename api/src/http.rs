//! HTTP: GraphQL at POST `/graphql`, GraphiQL at GET `/`, the FHIR facade at
//! `/fhir/R4` (`crate::fhir`), health, readiness and metrics; body limits,
//! request ids, panics turned into clean errors, and graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::GraphiQLSource;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::context::{Receipts, RequestContext};
use crate::error::codes;
use crate::limits::Limited;
use crate::schema::{self, PortalSchema};
use crate::service::Service;
use async_graphql::Executor;

#[derive(Clone)]
struct AppState {
    service: Arc<Service>,
    schema: Limited<PortalSchema>,
    sockets: Arc<crate::websocket::Sockets>,
    /// Requests being answered, per person.
    in_flight: Arc<crate::rate::Holds<(String, uuid::Uuid)>>,
    /// Parsed documents, by query text.
    documents: Arc<crate::documents::Documents>,
}

/// The whole HTTP surface (see [`crate::app::App`], which serves it).
pub fn router(service: Arc<Service>) -> Router {
    let limit = service.settings.server.max_body_bytes;
    let request_timeout = service.settings.server.request_timeout;
    let state = AppState {
        schema: schema::serving(Arc::clone(&service)),
        sockets: Default::default(),
        in_flight: Default::default(),
        documents: Default::default(),
        service,
    };
    // Browsers of the configured origins may call; preflights are answered
    // (and no origin is allowed by default).
    let origins: Vec<HeaderValue> = state
        .service
        .settings
        .server
        .cors_origins
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([axum::http::HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600));
    let router = Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(websocket))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/trail/witness", get(witness))
        .route("/exports/{id}/archive", get(export_archive))
        .nest_service(
            "/fhir/R4",
            crate::fhir::router(crate::fhir::Fhir {
                service: Arc::clone(&state.service),
                schema: state.schema.clone(),
                in_flight: Arc::clone(&state.in_flight),
                documents: Arc::clone(&state.documents),
                started: chrono::Utc::now(),
            }),
        );
    // Closed by `server.metrics = false`: then it is an unknown path.
    let router = if state.service.settings.server.metrics {
        router.route("/metrics", get(metrics))
    } else {
        router
    };
    router
        .fallback(|| async {
            error_response(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such path")
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .layer(DefaultBodyLimit::max(limit))
        // Dropping the request's future cancels it: its queries stop and
        // its pool connections go back.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "internal error",
            )
        }))
        .layer(middleware::map_response(json_errors))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Every error leaves as a GraphQL JSON error with a code: the ones axum
/// and tower-http make (405, 408, a refused WebSocket upgrade, ...) come
/// without one, or as plain text.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json")
                || v.starts_with(GRAPHQL_RESPONSE)
                || v.starts_with("application/fhir+json")
        });
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejections of axum explain themselves in a short text; keep it.
    let text = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !t.trim().is_empty() && t.len() < 300 && status.as_u16() < 500);
    let code = match status {
        StatusCode::UNAUTHORIZED => codes::UNAUTHENTICATED,
        StatusCode::FORBIDDEN => codes::FORBIDDEN,
        StatusCode::NOT_FOUND => codes::NOT_FOUND,
        StatusCode::REQUEST_TIMEOUT => codes::TIMEOUT,
        StatusCode::PAYLOAD_TOO_LARGE => codes::BAD_USER_INPUT,
        s if s.is_server_error() => codes::INTERNAL,
        _ => codes::BAD_REQUEST,
    };
    let message = match (status, text) {
        (StatusCode::REQUEST_TIMEOUT, _) => {
            "the request took longer than the service allows (server.request_timeout) and was cancelled"
                .to_string()
        }
        (s, _) if s.is_server_error() => "internal error".to_string(),
        (_, Some(text)) => text.trim().to_string(),
        (s, None) => s.canonical_reason().unwrap_or("bad request").to_lowercase(),
    };
    let mut response = error_response(status, code, &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// A GraphQL-shaped error for failures before GraphQL runs.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// `POST /graphql`: one GraphQL request in JSON, or a batch of them (a JSON
/// array, at most `graphql.max_batch`), answered in order.
async fn graphql_post(
    State(app): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let limit = app.service.settings.server.max_body_bytes;
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::BAD_USER_INPUT,
                &format!("request body is larger than {limit} bytes"),
            )
        }
        Err(rejection) => {
            return error_response(
                rejection.status(),
                codes::BAD_USER_INPUT,
                "request body could not be read",
            )
        }
    };
    let batch: async_graphql::BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                codes::BAD_USER_INPUT,
                &format!("request body is not a GraphQL request in JSON: {error}"),
            )
        }
    };
    let max = app.service.settings.graphql.max_batch;
    let requests = match batch {
        async_graphql::BatchRequest::Single(request) => {
            return answer(&app, connect, &headers, vec![request], false).await
        }
        async_graphql::BatchRequest::Batch(requests) => requests,
    };
    if requests.is_empty() || requests.len() > max {
        return error_response(
            StatusCode::BAD_REQUEST,
            codes::BAD_USER_INPUT,
            &format!("a batch holds 1-{max} requests, got {}", requests.len()),
        );
    }
    answer(&app, connect, &headers, requests, true).await
}

/// `GET /graphql`: a query (never a mutation) in the URL's `query`,
/// `variables` and `operationName`, by the GraphQL-over-HTTP
/// specification; without `query`, GraphiQL.
async fn graphql_get(
    State(app): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(query) = params.get("query") else {
        // A persisted query's hash alone names a document this handler
        // cannot see before it runs, which could be a mutation: those go
        // over POST.
        if params.contains_key("extensions") {
            return error_response(
                StatusCode::BAD_REQUEST,
                codes::BAD_USER_INPUT,
                "persisted queries go over POST; GET takes a whole `query`",
            );
        }
        return graphiql().await.into_response();
    };
    let mut request = async_graphql::Request::new(query.clone());
    if let Some(name) = params.get("operationName") {
        request = request.operation_name(name.clone());
    }
    if let Some(variables) = params.get("variables") {
        match serde_json::from_str::<serde_json::Value>(variables) {
            Ok(variables) if variables.is_object() => {
                request = request.variables(async_graphql::Variables::from_json(variables))
            }
            Ok(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    codes::BAD_USER_INPUT,
                    "`variables` is not a JSON object",
                )
            }
            Err(error) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    codes::BAD_USER_INPUT,
                    &format!("`variables` is not a JSON object: {error}"),
                )
            }
        }
    }
    if is_mutation(&request) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::BAD_REQUEST,
            "mutations go over POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    answer(&app, connect, &headers, vec![request], false).await
}

/// Whether the operation a request would run is a mutation (a document that
/// does not parse is left to the executor to refuse).
fn is_mutation(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let ty = |op: &async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>| {
        op.node.ty
    };
    match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => ty(op) == OperationType::Mutation,
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .get(name)
            .is_some_and(|op| ty(op) == OperationType::Mutation),
        (DocumentOperations::Multiple(ops), None) => {
            ops.values().any(|op| ty(op) == OperationType::Mutation)
        }
    }
}

/// The media type of GraphQL responses (GraphQL over HTTP); `application/json`
/// for clients that do not ask for it.
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Runs each request, waits for their access-trail records, and answers
/// (an array for a batch). A client that accepts
/// `application/graphql-response+json` gets it, with status 400 for a
/// single request that failed before it ran (no `data`), as the
/// GraphQL-over-HTTP specification says; others get `application/json`
/// and 200.
async fn answer(
    app: &AppState,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: &HeaderMap,
    requests: Vec<async_graphql::Request>,
    batch: bool,
) -> Response {
    let started = Instant::now();
    // Always ours: a client-chosen id could collide with another request's.
    let request_id = uuid::Uuid::new_v4().to_string();
    let caller = caller_of(app, headers).await;
    let client_address = connect.map(|c| c.0 .0.ip().to_string());
    let read_after = match headers.get(crate::consistency::HEADER) {
        None => None,
        Some(value) => match value.to_str().ok().map(crate::consistency::parse_token) {
            Some(Ok(at)) => Some(at),
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    codes::BAD_USER_INPUT,
                    crate::consistency::NOT_A_TOKEN,
                )
            }
        },
    };
    // One person's requests answered at once are bounded.
    let _held = match &caller {
        Ok(c) => {
            let key = (c.organisation.clone(), c.subject);
            let max = app.service.settings.server.requests_in_flight_per_person;
            match app.in_flight.hold(key, max) {
                Some(held) => Some(held),
                None => {
                    return error_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        codes::RATE_LIMITED,
                        "too many requests of yours at once: wait for an answer first",
                    )
                }
            }
        }
        Err(_) => None,
    };
    let receipts = Arc::new(Receipts::default());
    let mut responses = Vec::with_capacity(requests.len());
    for request in requests {
        let span = tracing::info_span!("graphql", request_id = %request_id, operation = request.operation_name.as_deref().unwrap_or(""));
        let _entered = span.enter();
        drop(_entered);
        let request = app.documents.prepare(request);
        let mut response = app
            .schema
            .execute(request.data(RequestContext {
                caller: caller.clone(),
                request_id: request_id.clone(),
                client_address: client_address.clone(),
                receipts: Arc::clone(&receipts),
                over_websocket: false,
                clock: crate::clock::Clock::Wall,
                read_after,
            }))
            .await;
        crate::error::code_input_errors(&mut response.errors);
        responses.push(response);
    }
    // Nothing leaves before its access-trail records are committed.
    if let Err(error) = receipts.written().await {
        tracing::error!(%error, %request_id, "answer withheld: access trail not written");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error",
        );
    }
    app.service
        .metrics
        .request_seconds
        .observe(started.elapsed().as_secs_f64());
    let wants_graphql_response = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(GRAPHQL_RESPONSE));
    let body = if batch {
        serde_json::to_vec(&responses)
    } else {
        serde_json::to_vec(&responses[0])
    };
    let Ok(body) = body else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error",
        );
    };
    let (status, media) = if wants_graphql_response {
        // Errors of a request that never ran (parse, validation, limits)
        // have no path; a field's error has one.
        let first = &responses[0];
        let not_run = !batch
            && first.data == async_graphql::Value::Null
            && first.is_err()
            && first.errors.iter().all(|e| e.path.is_empty());
        let status = if not_run {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        (status, GRAPHQL_RESPONSE)
    } else {
        (StatusCode::OK, "application/json")
    };
    let mut http = (status, [(header::CONTENT_TYPE, media)], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        http.headers_mut().insert("x-request-id", value);
    }
    http
}

/// GraphQL subscriptions over WebSocket, by `graphql-transport-ws` (see
/// [`crate::websocket`]).
async fn websocket(
    State(app): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    upgrade: axum::extract::WebSocketUpgrade,
) -> Response {
    let client_address = connect.map(|c| c.0 .0.ip().to_string());
    let limit = app.service.settings.server.max_body_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .protocols(["graphql-transport-ws"])
        .on_upgrade(move |socket| {
            crate::websocket::serve(socket, app.service, app.schema, app.sockets, client_address)
        })
}

async fn readyz(State(app): State<AppState>) -> Response {
    match app.service.engine.status().await {
        Ok(status) => Json(json!({ "ready": true, "projections": status })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ready": false })),
            )
                .into_response()
        }
    }
}

/// Who the request's `Authorization` header says is asking.
async fn caller_of(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<crate::auth::Caller, crate::auth::AuthError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    app.service.auth.verify_header(header).await
}

/// The signed part of a data export's download link.
#[derive(serde::Deserialize)]
struct ExportLink {
    expires: i64,
    signature: String,
}

/// `GET /exports/{id}/archive?expires=..&signature=..`: a person's data
/// export (a ZIP file), for whoever holds the link `dataExport` gave, until
/// it expires; each fetch is recorded in the access trail first.
async fn export_archive(
    State(app): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    link: Result<Query<ExportLink>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let refused = |e: crate::error::ApiError| {
        let status = match e.code() {
            codes::NOT_FOUND => StatusCode::NOT_FOUND,
            codes::FORBIDDEN => StatusCode::FORBIDDEN,
            codes::FAILED_PRECONDITION => StatusCode::GONE,
            codes::RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error_response(status, e.code(), &e.message())
    };
    let (Ok(id), Ok(Query(link))) = (id.parse::<uuid::Uuid>(), link) else {
        return refused(crate::error::ApiError::Forbidden(
            "this download link is not valid".into(),
        ));
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_address = connect.map(|c| c.0 .0.ip().to_string());
    match app
        .service
        .download_export(
            id,
            link.expires,
            &link.signature,
            &request_id,
            client_address,
        )
        .await
    {
        Ok((bytes, requested_at)) => {
            let name = format!(
                "attachment; filename=\"portal-data-{}.zip\"",
                requested_at.format("%Y-%m-%d")
            );
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(value) = HeaderValue::from_str(&name) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                headers.insert("x-request-id", value);
            }
            response
        }
        Err(e) => refused(e),
    }
}

/// `after` on `GET /trail/witness`.
#[derive(serde::Deserialize)]
struct After {
    #[serde(default)]
    after: u64,
}

/// Most checkpoints one `GET /trail/witness` gives.
const WITNESS_PAGE: usize = 100;

/// `GET /trail/witness?after=N`: the witness's public key and up to 100
/// signed checkpoints numbered above `N`, for an auditor to keep outside the
/// service. No records (chain names are people's ids), but the checkpoints
/// count the whole deployment's chains and records: auditors only.
async fn witness(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(after): Query<After>,
) -> Response {
    let caller = caller_of(&app, &headers).await;
    match caller {
        Err(_) => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHENTICATED,
                "an auditor's bearer token is needed",
            )
        }
        Ok(caller) if !caller.may(domain::access::Duty::SearchTrail) => {
            return error_response(
                StatusCode::FORBIDDEN,
                codes::FORBIDDEN,
                "only auditors fetch the witness's checkpoints",
            )
        }
        Ok(_) => {}
    }
    let witness = &app.service.witness;
    match witness.published(after.after, WITNESS_PAGE) {
        Ok(checkpoints) => axum::Json(serde_json::json!({
            "publicKey": witness.public_key(),
            "checkpoints": checkpoints,
        }))
        .into_response(),
        Err(error) => {
            tracing::error!(?error, "the witness's checkpoints could not be read");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "internal error",
            )
        }
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let progress: Vec<(&str, i64)> = app
        .service
        .engine
        .progress()
        .into_iter()
        .map(|(n, c)| (n, c.position))
        .collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.service.metrics.render(&progress),
    )
        .into_response()
}

async fn count_responses(
    State(app): State<AppState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    app.service
        .metrics
        .http_response(response.status().as_u16());
    response
}

/// Resolves on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    // Registered now, not when the server first polls the future: a SIGTERM
    // that comes as soon as the service says it listens must not meet the
    // default action (the process killed mid-write).
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match term {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutting down");
    }
}
