//! `portal serve` and `portal migrate`.

use api::app::App;
use api::settings::Settings;

use crate::Outcome;

/// Runs the service until SIGTERM or Ctrl-C (migrates first).
pub async fn serve(settings: Settings) -> Outcome {
    let listener = tokio::net::TcpListener::bind(&settings.server.bind).await?;
    let addr = listener.local_addr()?;
    let app = App::build(settings).await?;
    // SIGTERM is handled from before the service says it listens.
    let shutdown = api::http::shutdown_signal();
    println!("portal listening on http://{addr}");
    println!("GraphiQL: http://{addr}/   GraphQL: POST http://{addr}/graphql");
    app.serve(listener, shutdown).await?;
    Ok(())
}

/// Applies the migrations and exits.
pub async fn migrate(settings: Settings) -> Outcome {
    api::service::migrate(&settings).await?;
    println!("migrations applied");
    Ok(())
}
