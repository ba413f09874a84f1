//! The one wiring point: typed settings in, a serving application out.
//! `portal serve` (and so every end-to-end test, which runs that binary)
//! builds the service here; the command-line tools that need the service
//! without HTTP open [`Service`] itself.
//!
//! ```text
//! Settings ─► Service::open (stores, projections engine, trail, live feed, usage)
//!         └─► http::router (GraphQL over HTTP and WebSocket, health, metrics)
//! App::serve: projection runners + the witness + the forum's concern watch +
//! the accept loop, until shutdown
//! ```

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::service::Service;
use crate::settings::Settings;

/// Longest the service waits at start for its projections to apply the
/// events already stored, before it serves anyway.
const START_CATCH_UP_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// The service and its HTTP surface, ready to serve.
pub struct App {
    service: Arc<Service>,
    router: Router,
}

impl App {
    /// Opens the store (creating and migrating it if needed), prepares the
    /// projections, the trail, the live feed and usage recording, and builds
    /// the HTTP surface over them.
    pub async fn build(settings: Settings) -> Result<App, ApiError> {
        let service = Arc::new(Service::open(settings).await?);
        let router = crate::http::router(Arc::clone(&service));
        Ok(App { service, router })
    }

    /// The service behind the HTTP surface.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Serves on `listener` until `shutdown` resolves, running the projection
    /// runners meanwhile; in-flight requests finish, then the runners stop.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let runners = self.service.engine.spawn(stopped.clone());
        // Reads right after a restart show what was written before it: the
        // first requests wait (in the listener's queue) until every
        // projection has applied the events stored at start, up to a bound.
        if let Ok(last) = projections::stream::last_checkpoint(&self.service.db).await {
            let names = self.service.engine.names();
            if !self
                .service
                .engine
                .wait_for(&names, last, START_CATCH_UP_MAX)
                .await
            {
                tracing::warn!("the projections had not caught up at start; serving meanwhile");
            }
        }
        let service = Arc::clone(&self.service);
        let witness = tokio::spawn(async move {
            let interval = service.settings.trail.witness_interval;
            service
                .witness
                .run(service.db.clone(), interval, stopped)
                .await;
        });
        // Erasures the ledger holds and the store does not (a restored
        // backup) are recorded again before the first request is served.
        self.service
            .replay_erasures()
            .await
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        // Data exports a previous run left cannot be opened (their keys
        // were in its memory): they go.
        self.service
            .exports
            .clear_leftovers()
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        // Concerns no moderator has opened are raised again until the service stops.
        let concerns = tokio::spawn(crate::forum::watch_concerns(Arc::clone(&self.service)));
        // Requests to be erased are carried out when they fall due.
        let erasures = tokio::spawn(crate::privacy::erasure::watch_erasures(Arc::clone(
            &self.service,
        )));
        let limits = crate::connection::Limits {
            header_timeout: self.service.settings.server.header_timeout,
            per_address: self.service.settings.server.connections_per_address,
        };
        let result = crate::connection::accept(listener, self.router, limits, shutdown).await;
        // Every answered read's record is committed by now: the witness's
        // last checkpoint covers them.
        let _ = stop.send(true);
        for runner in runners {
            let _ = runner.await;
        }
        let _ = witness.await;
        concerns.abort();
        erasures.abort();
        result
    }
}
