//! Prometheus metrics, kept in atomics and rendered as text at `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// A histogram with fixed buckets, in seconds.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, out: &mut String) {
        out.push_str(&format!("# TYPE {name} histogram\n"));
        for (i, bound) in BUCKETS.iter().enumerate() {
            out.push_str(&format!(
                "{name}_bucket{{le=\"{bound}\"}} {}\n",
                self.counts[i].load(Ordering::Relaxed)
            ));
        }
        let count = self.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        out.push_str(&format!(
            "{name}_sum {}\n{name}_count {count}\n",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
    }
}

/// The service's metrics.
#[derive(Default)]
pub struct Metrics {
    http_requests: Mutex<BTreeMap<u16, u64>>,
    commands: Mutex<BTreeMap<&'static str, u64>>,
    /// Time to handle a GraphQL request.
    pub request_seconds: Histogram,
    /// Time to store a command's events and see them projected.
    pub command_seconds: Histogram,
}

impl Metrics {
    /// Counts an HTTP response by status.
    pub fn http_response(&self, status: u16) {
        if let Ok(mut map) = self.http_requests.lock() {
            *map.entry(status).or_default() += 1;
        }
    }

    /// Counts a command by outcome (`ok`, `replayed`, or an error code).
    pub fn command(&self, outcome: &'static str) {
        if let Ok(mut map) = self.commands.lock() {
            *map.entry(outcome).or_default() += 1;
        }
    }

    /// Renders everything in the Prometheus text format, with the given
    /// projection positions appended.
    pub fn render(&self, projections: &[(&str, i64)]) -> String {
        let mut out = String::new();
        out.push_str("# TYPE portal_http_responses_total counter\n");
        if let Ok(map) = self.http_requests.lock() {
            for (status, n) in map.iter() {
                out.push_str(&format!(
                    "portal_http_responses_total{{status=\"{status}\"}} {n}\n"
                ));
            }
        }
        out.push_str("# TYPE portal_commands_total counter\n");
        if let Ok(map) = self.commands.lock() {
            for (outcome, n) in map.iter() {
                out.push_str(&format!(
                    "portal_commands_total{{outcome=\"{outcome}\"}} {n}\n"
                ));
            }
        }
        self.request_seconds
            .render("portal_graphql_request_seconds", &mut out);
        self.command_seconds
            .render("portal_command_seconds", &mut out);
        out.push_str("# TYPE portal_projection_position gauge\n");
        for (name, position) in projections {
            out.push_str(&format!(
                "portal_projection_position{{projection=\"{name}\"}} {position}\n"
            ));
        }
        out
    }
}
