//! The Portal API: GraphQL over axum, authentication, settings, and the
//! service that ties the event store to the projections.
#![forbid(unsafe_code)]

pub mod access;
pub mod aggregate_cache;
pub mod agreements;
pub mod app;
pub mod audit;
pub mod auth;
pub mod care;
pub mod clock;
pub mod connection;
pub mod consistency;
pub mod context;
pub mod core;
pub mod documents;
pub mod durability;
pub mod error;
pub mod folds;
pub mod forum;
pub mod history;
pub mod http;
pub mod ids;
pub mod limits;
pub mod live;
pub mod measures;
pub mod messaging;
pub mod metrics;
pub mod node;
pub mod paging;
pub mod payload;
pub mod rate;
pub mod request;
pub mod research;
pub mod schema;
pub mod seal;
pub mod service;
pub mod settings;
pub mod settle_extension;
pub mod subscription;
pub mod toolbox;
pub mod trail;
pub mod usage;
pub mod usage_extension;
pub mod verify;
pub mod websocket;
pub mod witness;
