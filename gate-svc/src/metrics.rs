//! Prometheus metrics of the gate: decisions recorded, by decision, and break-glass uses. The
//! gRPC request metrics come from [`stella_metrics::GrpcMetrics`].

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use stella_metrics::GrpcMetrics;

use crate::evaluate::Decision;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

/// The gate's metrics. [`GateMetrics::default`] registers them nowhere, for a gate that serves
/// no metrics endpoint.
#[derive(Debug)]
pub struct GateMetrics {
    /// Requests and latencies of every RPC, recorded by the server's tower layer.
    pub grpc: Arc<GrpcMetrics>,
    decisions: Family<DecisionLabels, Counter>,
    break_glass_uses: Counter,
}

impl Default for GateMetrics {
    fn default() -> Self {
        GateMetrics::register(&mut Registry::default())
    }
}

impl GateMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = GateMetrics {
            grpc: Arc::new(GrpcMetrics::register(registry)),
            decisions: Family::default(),
            break_glass_uses: Counter::default(),
        };
        registry.register(
            "stella_decisions",
            "Decision records written by Evaluate, by decision (allow, deny, pending); replays of a request id are not counted",
            metrics.decisions.clone(),
        );
        registry.register(
            "stella_break_glass_uses",
            "Decision records written with a break-glass override applied",
            metrics.break_glass_uses.clone(),
        );
        metrics
    }

    /// Counts one new decision record.
    pub fn observe_decision(&self, decision: Decision, break_glass: bool) {
        self.decisions
            .get_or_create(&DecisionLabels {
                decision: decision.as_str(),
            })
            .inc();
        if break_glass {
            self.break_glass_uses.inc();
        }
    }
}
