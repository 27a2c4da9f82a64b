//! What the nodes did with a flood, as each reports it itself: its height, the gossip its
//! validator rejected (`seedfed_gossip_rejected` in `/metrics`), the transactions its mempool
//! refused (`seedfed_mempool_refused`, every reason), and, from `/status`, how it sees each
//! flooder: admitted or not, connected or not, and its gossip score (negative: penalised;
//! below -80: graylisted, everything it sends ignored).
//!
//! Guarantees: read-only; a node that does not answer is reported as such (`None`), never as
//! zeros.

use std::net::SocketAddr;

use seedfed_node::api::ApiClient;
use serde::Serialize;

/// One node's view of a flood.
#[derive(Clone, Debug, Serialize)]
pub struct NodeView {
    /// The node's height.
    pub height: u64,
    /// Gossip messages its validator rejected since start.
    pub gossip_rejected: f64,
    /// Transactions its mempool refused since start (gossip and API, every reason).
    pub mempool_refused: f64,
    /// Flooders it lists as admitted.
    pub flooders_admitted: usize,
    /// Flooders connected to it now.
    pub flooders_connected: usize,
    /// Admitted flooders whose gossip score is below zero.
    pub flooders_penalised: usize,
    /// The lowest gossip score among the flooders it knows.
    pub lowest_score: Option<f64>,
}

/// The sum of every sample of the metric family `name` in a Prometheus text exposition
/// (`name` itself, or `name_total` for a counter, with any labels).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    let total = format!("{name}_total");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let family = series.split('{').next()?;
            (family == name || family == total)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// The node at `api`'s view of the flooders `flooders` (peer ids), or `None` if it does not
/// answer.
pub async fn node_view(
    client: &ApiClient,
    api: SocketAddr,
    flooders: &[String],
) -> Option<NodeView> {
    let status = client.status(api).await.ok()?;
    let (code, metrics) = client.request(api, "/metrics", None).await.ok()?;
    if code != 200 {
        return None;
    }
    let mine = |p: &str| flooders.iter().any(|f| f == p);
    let admitted: Vec<_> = status
        .network
        .admitted
        .iter()
        .filter(|p| mine(&p.peer_id))
        .collect();
    Some(NodeView {
        height: status.chain.as_ref().map_or(0, |c| c.height),
        gossip_rejected: metric_sum(&metrics, "seedfed_gossip_rejected"),
        mempool_refused: metric_sum(&metrics, "seedfed_mempool_refused"),
        flooders_admitted: admitted.len(),
        flooders_connected: status.network.connected.iter().filter(|p| mine(p)).count(),
        flooders_penalised: admitted
            .iter()
            .filter(|p| p.gossip_score.is_some_and(|s| s < 0.0))
            .count(),
        lowest_score: admitted
            .iter()
            .filter_map(|p| p.gossip_score)
            .min_by(f64::total_cmp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_family_over_its_labels_and_nothing_else() {
        let text = "# HELP seedfed_mempool_refused x\n\
            # TYPE seedfed_mempool_refused counter\n\
            seedfed_mempool_refused_total{reason=\"invalid\"} 12\n\
            seedfed_mempool_refused_total{reason=\"stale_nonce\"} 3\n\
            seedfed_mempool_refused_bytes_total 99\n\
            seedfed_gossip_rejected_total 7\n\
            seedfed_gossip_rejected_other 5\n";
        assert_eq!(metric_sum(text, "seedfed_mempool_refused"), 15.0);
        assert_eq!(metric_sum(text, "seedfed_gossip_rejected"), 7.0);
        assert_eq!(metric_sum(text, "seedfed_absent"), 0.0);
    }
}
