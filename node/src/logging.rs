//! Log output for the `seedfed` and `seedfed-bootstrap` binaries: `tracing` to stderr, filtered
//! by `RUST_LOG` when set (else the config's `log.filter`, by default [`DEFAULT_FILTER`]), plain
//! or JSON per `log.format`. A filter that does not parse is an error, never a silent fallback.
//! At the default level INFO shows decisions, milestones, faults and evidence; per-vote and
//! per-message detail is at DEBUG (or, for the consensus library, filtered to WARN).

use thiserror::Error;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// The default filter (`log.filter`, `seedfed-bootstrap --log-filter`): INFO for decisions,
/// milestones, faults and evidence; the consensus library (`arc_malachitebft_*`, which logs
/// every vote, round step and timeout at INFO) only from WARN. Per-vote and per-message detail
/// comes back per module, e.g. `info,arc_malachitebft=warn,arc_malachitebft_core_consensus=info`
/// for the library's votes and steps (`=debug` for more), `seedfed_node::chain=debug` for ours.
pub const DEFAULT_FILTER: &str = "info,arc_malachitebft=warn";

/// Why logging could not be set up.
#[derive(Debug, Error)]
pub enum LoggingError {
    /// The filter (from `RUST_LOG` or the config) does not parse.
    #[error("invalid log filter: {0}")]
    Filter(String),
    /// A global subscriber was already installed.
    #[error("cannot set up logging: {0}")]
    Init(String),
}

/// Installs the global subscriber for `config`.
pub fn init(config: &Config) -> Result<(), LoggingError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(&config.log.filter),
    }
    .map_err(|e| LoggingError::Filter(e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let r = match config.log.format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    r.map_err(|e| LoggingError::Init(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use seedfed_protocol::consensus::{Consensus, ConsensusKey, ConsensusParams, Input, Output};
    use seedfed_protocol::ledger::Ledger;
    use seedfed_protocol::member::MemberId;
    use tracing::Level;
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    use super::*;

    /// Records the target and level of every event the filter lets through.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<(String, Level)>>>);

    impl<S: tracing::Subscriber> Layer<S> for Seen {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let m = event.metadata();
            if let Ok(mut v) = self.0.lock() {
                v.push((m.target().to_string(), *m.level()));
            }
        }
    }

    /// A single validator deciding three heights through the consensus library, logged
    /// through `filter`: the events that got through.
    fn decide_three_heights(filter: &str) -> Vec<(String, Level)> {
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::try_new(filter).unwrap())
            .with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            let id = MemberId(
                ed25519_dalek::SigningKey::from_bytes(&[3; 32])
                    .verifying_key()
                    .to_bytes(),
            );
            let genesis = crate::chain::test_genesis::genesis("logs", &[(id, 10)], 10);
            let ledger = Ledger::from_genesis(&genesis).unwrap();
            let key = ConsensusKey::from_seed([3; 32]);
            let mut c = Consensus::new(ledger, None, key, ConsensusParams::default()).unwrap();
            let mut out = c.start();
            for _ in 0..3 {
                let (height, round) = out
                    .iter()
                    .find_map(|o| match o {
                        Output::BuildBlock { height, round } => Some((*height, *round)),
                        _ => None,
                    })
                    .expect("asked to build a block");
                out = c.handle(Input::ProposeTxs {
                    height,
                    round,
                    txs: Vec::new(),
                });
            }
            assert_eq!(c.ledger().height(), 3);
        });
        let v = seen.0.lock().unwrap().clone();
        v
    }

    fn library_at_info(events: &[(String, Level)]) -> Vec<&str> {
        events
            .iter()
            .filter(|(t, l)| t.starts_with("arc_malachitebft") && *l == Level::INFO)
            .map(|(t, _)| t.as_str())
            .collect()
    }

    #[test]
    fn the_default_filter_keeps_per_vote_consensus_logs_out_of_info() {
        // Before: the default filter was `info`, and the consensus library logs every vote,
        // round step and timeout at INFO (about 200 KB per node in three minutes of an idle
        // 7-node testnet).
        let plain_info = decide_three_heights("info");
        let library = library_at_info(&plain_info);
        assert!(
            library
                .iter()
                .any(|t| t.starts_with("arc_malachitebft_core_consensus::handle")),
            "the library logs votes and steps at INFO: {library:?}"
        );
        let default = decide_three_heights(DEFAULT_FILTER);
        assert_eq!(library_at_info(&default), Vec::<&str>::new());
        // Switchable per module: the library's votes come back with one directive.
        const VOTES: &str = "arc_malachitebft_core_consensus::handle::vote";
        let votes = decide_three_heights(&format!("{DEFAULT_FILTER},{VOTES}=info"));
        let votes = library_at_info(&votes);
        assert!(
            !votes.is_empty() && votes.iter().all(|t| *t == VOTES),
            "{votes:?}"
        );
        assert_eq!(votes.len(), library.iter().filter(|t| **t == VOTES).count());
        // The library's warnings (faults, conflicting votes) and our own INFO still pass.
        let filter = || EnvFilter::try_new(DEFAULT_FILTER).unwrap();
        let on = |f: EnvFilter, check: fn() -> bool| {
            tracing::subscriber::with_default(tracing_subscriber::registry().with(f), check)
        };
        assert!(on(filter(), || tracing::event_enabled!(
            target: "arc_malachitebft_core_consensus::handle::vote",
            Level::WARN
        )));
        assert!(!on(filter(), || tracing::event_enabled!(
            target: "arc_malachitebft_core_consensus::handle::vote",
            Level::INFO
        )));
        assert!(on(filter(), || tracing::event_enabled!(
            target: "seedfed_node::chain::driver",
            Level::INFO
        )));
        assert!(!on(filter(), || tracing::event_enabled!(
            target: "seedfed_node::chain::driver",
            Level::DEBUG
        )));
    }
}
