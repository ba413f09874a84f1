//! The reference `ops/bench` measures the service against: the stock
//! cqrs-es 0.5 + postgres-es stack, written the way the library's README and
//! its demo (`cqrs-demo`) show it, with stock configuration and no tuning.
//! One aggregate (a bank account), a `GenericQuery` view kept by
//! `PostgresViewRepository`, and two routes over axum:
//!
//! - `POST /account/{id}` with a command in JSON runs it (`204`, or `400`
//!   with the error);
//! - `GET /account/{id}` answers the account's view in JSON (`404` if none).
//!
//! Usage: `stock-reference <postgres url> <listen address>`; creates the
//! tables the library's README gives on first start.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{GenericQuery, ViewRepository};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, View};
use postgres_es::{default_postgress_pool, postgres_cqrs, PostgresCqrs, PostgresViewRepository};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
enum BankAccountCommand {
    OpenAccount { account_id: String },
    DepositMoney { amount: f64 },
    WithdrawMoney { amount: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum BankAccountEvent {
    AccountOpened { account_id: String },
    CustomerDepositedMoney { amount: f64, balance: f64 },
    CustomerWithdrewCash { amount: f64, balance: f64 },
}

impl DomainEvent for BankAccountEvent {
    fn event_type(&self) -> String {
        match self {
            BankAccountEvent::AccountOpened { .. } => "AccountOpened",
            BankAccountEvent::CustomerDepositedMoney { .. } => "CustomerDepositedMoney",
            BankAccountEvent::CustomerWithdrewCash { .. } => "CustomerWithdrewCash",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BankAccountError(String);

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct BankAccount {
    opened: bool,
    balance: f64,
}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "account";
    type Command = BankAccountCommand;
    type Event = BankAccountEvent;
    type Error = BankAccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            BankAccountCommand::OpenAccount { account_id } => {
                BankAccountEvent::AccountOpened { account_id }
            }
            BankAccountCommand::DepositMoney { amount } => {
                BankAccountEvent::CustomerDepositedMoney {
                    amount,
                    balance: self.balance + amount,
                }
            }
            BankAccountCommand::WithdrawMoney { amount } => {
                if self.balance < amount {
                    return Err(BankAccountError("funds not available".into()));
                }
                BankAccountEvent::CustomerWithdrewCash {
                    amount,
                    balance: self.balance - amount,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BankAccountEvent::AccountOpened { .. } => self.opened = true,
            BankAccountEvent::CustomerDepositedMoney { balance, .. }
            | BankAccountEvent::CustomerWithdrewCash { balance, .. } => self.balance = balance,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BankAccountView {
    account_id: Option<String>,
    balance: f64,
    ledger: Vec<f64>,
}

impl View<BankAccount> for BankAccountView {
    fn update(&mut self, event: &EventEnvelope<BankAccount>) {
        match &event.payload {
            BankAccountEvent::AccountOpened { account_id } => {
                self.account_id = Some(account_id.clone())
            }
            BankAccountEvent::CustomerDepositedMoney { amount, balance } => {
                self.ledger.push(*amount);
                self.balance = *balance;
            }
            BankAccountEvent::CustomerWithdrewCash { amount, balance } => {
                self.ledger.push(-amount);
                self.balance = *balance;
            }
        }
    }
}

type AccountQuery = GenericQuery<
    PostgresViewRepository<BankAccountView, BankAccount>,
    BankAccountView,
    BankAccount,
>;

#[derive(Clone)]
struct AppState {
    cqrs: Arc<PostgresCqrs<BankAccount>>,
    views: Arc<PostgresViewRepository<BankAccountView, BankAccount>>,
}

/// The tables of postgres-es's README.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
     payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    "CREATE TABLE IF NOT EXISTS snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, \
     payload json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
    "CREATE TABLE IF NOT EXISTS account_query (view_id text NOT NULL, version bigint CHECK (version >= 0) NOT NULL, \
     payload json NOT NULL, PRIMARY KEY (view_id))",
];

async fn command(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(command): Json<BankAccountCommand>,
) -> Response {
    match state.cqrs.execute(&id, command).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    }
}

async fn query(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.views.load(&id).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(listen)) = (args.next(), args.next()) else {
        eprintln!("usage: stock-reference <postgres url> <listen address>");
        std::process::exit(2);
    };
    let pool = default_postgress_pool(&url).await;
    for statement in SCHEMA {
        if let Err(error) = sqlx::query(statement).execute(&pool).await {
            eprintln!("schema: {error}");
            std::process::exit(1);
        }
    }
    let views = Arc::new(PostgresViewRepository::new("account_query", pool.clone()));
    let query_processor: AccountQuery = GenericQuery::new(Arc::clone(&views));
    let cqrs = Arc::new(postgres_cqrs(pool, vec![Box::new(query_processor)], ()));
    let app = Router::new()
        .route("/account/{id}", get(query).post(command))
        .with_state(AppState { cqrs, views });
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("bind {listen}: {error}");
            std::process::exit(1);
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("stock-reference listening on {addr}");
    }
    if let Err(error) = axum::serve(listener, app).await {
        eprintln!("serve: {error}");
    }
}
