//! The facts the HTTP layer (or the WebSocket) establishes about a request
//! before GraphQL runs, and the access-trail receipts its answer waits for.

use std::sync::Arc;

use crate::auth::{AuthError, Caller};

/// Per-request facts the HTTP layer establishes before GraphQL runs.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The verified caller, or why there is none.
    pub caller: Result<Caller, AuthError>,
    /// Id of this request, recorded in every event it causes.
    pub request_id: String,
    /// The address the request came from, recorded in the access trail.
    pub client_address: Option<String>,
    /// Access-trail records this request's answer waits for.
    pub receipts: Arc<Receipts>,
    /// True on a WebSocket, where nothing waits for receipts: portal and
    /// trail reads are refused there (they go over HTTP).
    pub over_websocket: bool,
    /// Where this request's "now" comes from.
    pub clock: crate::clock::Clock,
    /// A write the client named (its `Portal-Consistency` header) that this
    /// request's reads must show.
    pub read_after: Option<projections::Checkpoint>,
}

/// The access-trail records a request has queued. The HTTP layer sends the
/// answer only once every one is committed, and an error instead if any
/// failed: the trail is written before the data leaves (fail closed), while
/// the answer is computed at the same time.
#[derive(Debug, Default)]
pub struct Receipts {
    pending: std::sync::Mutex<Vec<crate::trail::Receipt>>,
    /// Refused attempts, written coalesced when the answer is ready
    /// (`domain::trail::coalesce`): they guard no data, so they need not
    /// overlap the work, and 500 aliases of one refused field are one record.
    held: std::sync::Mutex<Vec<(domain::trail::AccessRecord, projections::EventMetadata)>>,
    /// Where the held attempts go.
    trail: std::sync::OnceLock<crate::trail::Trail>,
    /// Set when a receipt could not even be kept: the answer must not leave.
    lost: std::sync::atomic::AtomicBool,
}

/// A request cancelled (its time ran out, its client went away) before
/// [`Receipts::written`] still has its refused attempts written: the writer
/// takes them whether or not anyone waits.
impl Drop for Receipts {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

impl Receipts {
    /// Adds a record to wait for.
    pub fn push(&self, receipt: crate::trail::Receipt) {
        match self.pending.lock() {
            Ok(mut pending) => pending.push(receipt),
            Err(_) => self.lost.store(true, std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Holds a refused attempt, to be written (coalesced) to `trail` by
    /// [`Receipts::written`].
    pub fn hold(
        &self,
        trail: &crate::trail::Trail,
        record: domain::trail::AccessRecord,
        metadata: projections::EventMetadata,
    ) {
        let _ = self.trail.get_or_init(|| trail.clone());
        match self.held.lock() {
            Ok(mut held) => held.push((record, metadata)),
            Err(_) => self.lost.store(true, std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Queues the held attempts, coalesced; the receipts are `push`ed.
    fn release(&self) -> Result<(), String> {
        let held = match self.held.lock() {
            Ok(mut held) => std::mem::take(&mut *held),
            Err(_) => return Err("an access-trail record was lost".into()),
        };
        if let Some(trail) = self.trail.get() {
            for (record, metadata) in domain::trail::coalesce(held) {
                self.push(trail.submit(record, metadata));
            }
        }
        Ok(())
    }

    /// Queues the held attempts, coalesced; then waits for every queued
    /// record; the first failure, if any.
    pub async fn written(&self) -> Result<(), String> {
        self.release()?;
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("an access-trail receipt was lost".into());
        }
        let receipts = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Err("an access-trail receipt was lost".into()),
        };
        for receipt in receipts {
            match receipt.await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err("the access-trail writer stopped".into()),
            }
        }
        Ok(())
    }
}
