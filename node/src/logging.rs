//! Log output for the `seedfed` and `seedfed-bootstrap` binaries: `tracing` to stderr, filtered
//! by `RUST_LOG` when set (else the config's `log.filter`), plain or JSON per `log.format`. A filter
//! that does not parse is an error, never a silent fallback.

use thiserror::Error;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

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
