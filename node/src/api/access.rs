//! Who may use the local HTTP API: the startup rule for where it may listen, and the check every
//! request passes before it reaches a route.
//!
//! The API submits transactions and sign requests and shows the node's view, so by default it
//! listens on loopback only and answers only requests that name a loopback host (`localhost`,
//! `127.0.0.1`, `[::1]`, with or without the port): a web page the operator opens cannot reach
//! it by DNS rebinding, because the browser's requests carry the page's own host name.
//! Listening anywhere else takes two explicit settings, `[api] allow_remote = true` and
//! `[api] token_file`; a non-loopback address without both is refused at startup. With a token
//! (also on loopback) every request must carry `Authorization: Bearer <token>`, compared in
//! constant time, or it gets 401. With remote access a request may also name an IP address (a
//! rebinding page names its domain, never an IP literal) or a name in `[api] allowed_hosts`.
//! The token is read from a private file (owner only, no symlink), zeroized on drop, never
//! logged and printed as `[redacted]`.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use thiserror::Error;
use tracing::debug;
use zeroize::Zeroizing;

use crate::config::{ApiSection, Config};
use crate::fsutil::{self, PrivateFileError};

/// Why the API's access settings were refused at startup.
#[derive(Debug, Error)]
pub enum AccessError {
    /// A non-loopback address without remote access and a token.
    #[error(
        "the local API would listen on {listen} ({addr}), which is not a loopback address, and \
         nothing would authenticate its requests there: keep `[api] listen` on 127.0.0.1 or \
         [::1], or set `[api] allow_remote = true` together with `[api] token_file = PATH` (a \
         file only you can read, holding the bearer token every request must carry)"
    )]
    NotLoopback {
        /// The configured address.
        listen: String,
        /// The non-loopback address it resolves to.
        addr: SocketAddr,
    },
    /// Remote access without a token.
    #[error(
        "`[api] allow_remote = true` needs `[api] token_file = PATH` too (a file only you can \
         read, holding the bearer token every request must carry)"
    )]
    RemoteWithoutToken,
    /// Host names without remote access.
    #[error(
        "`[api] allowed_hosts` is set but `[api] allow_remote` is not: other host names are \
         only accepted with remote access and a token (`allow_remote = true`, `token_file`)"
    )]
    HostsWithoutRemote,
    /// An entry of `allowed_hosts` is not a host name.
    #[error("`[api] allowed_hosts` entry {0:?} is not a host name (letters, digits, '-' and '.')")]
    BadHostName(String),
    /// The listen address does not resolve.
    #[error("invalid `[api] listen` address {listen:?}: {reason}")]
    BadListen {
        /// The configured address.
        listen: String,
        /// Why.
        reason: String,
    },
    /// The token file is unusable (unreadable, a symlink, not private).
    #[error("API token file: {0}")]
    TokenFile(#[from] PrivateFileError),
    /// The token is too short or has characters a header cannot carry.
    #[error(
        "API token file {path}: the token must be at least {min} visible ASCII characters with no \
         spaces (e.g. `head -c 32 /dev/urandom | base64 > {path}`)"
    )]
    BadToken {
        /// The file.
        path: String,
        /// The least length.
        min: usize,
    },
}

/// The bearer token of the API. Zeroized on drop; Debug prints `[redacted]`.
#[derive(Clone)]
pub struct ApiToken(Zeroizing<String>);

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl ApiToken {
    /// The shortest token accepted.
    pub const MIN_LEN: usize = 16;

    /// Reads the token from `path` (a private file: owner only, not a symlink); surrounding
    /// whitespace (a trailing newline) is not part of it.
    pub fn load(path: &Path) -> Result<Self, AccessError> {
        let bytes = fsutil::read_private(path)?;
        let bad = || AccessError::BadToken {
            path: path.display().to_string(),
            min: Self::MIN_LEN,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| bad())?.trim();
        if text.len() < Self::MIN_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }

    /// Whether `presented` is this token (constant time in its content).
    fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }

    /// The `Authorization` header value carrying this token (marked sensitive).
    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        let value = Zeroizing::new(format!("Bearer {}", self.0.as_str()));
        let mut v = HeaderValue::from_str(&value).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

/// Who the API answers: which `Host` names and whether a bearer token is required.
#[derive(Clone, Debug, Default)]
pub struct Access {
    token: Option<Arc<ApiToken>>,
    remote: bool,
    allowed_hosts: Vec<String>,
}

impl Access {
    /// Loopback only, no token: the default.
    pub fn loopback() -> Self {
        Self::default()
    }

    /// The access `[api]` asks for, refused if it would serve a non-loopback address without
    /// `allow_remote` and a token. The token file is resolved against `home`.
    pub fn from_config(home: &Path, api: &ApiSection) -> Result<Self, AccessError> {
        let addrs: Vec<SocketAddr> = api
            .listen
            .to_socket_addrs()
            .map_err(|e| AccessError::BadListen {
                listen: api.listen.clone(),
                reason: e.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(AccessError::BadListen {
                listen: api.listen.clone(),
                reason: "it resolves to no address".into(),
            });
        }
        if !api.allow_remote {
            if let Some(addr) = addrs.iter().find(|a| !is_loopback(a.ip())) {
                return Err(AccessError::NotLoopback {
                    listen: api.listen.clone(),
                    addr: *addr,
                });
            }
            if !api.allowed_hosts.is_empty() {
                return Err(AccessError::HostsWithoutRemote);
            }
        } else if api.token_file.is_none() {
            return Err(AccessError::RemoteWithoutToken);
        }
        let mut allowed_hosts = Vec::with_capacity(api.allowed_hosts.len());
        for h in &api.allowed_hosts {
            let ok = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(AccessError::BadHostName(h.clone()));
            }
            allowed_hosts.push(h.to_ascii_lowercase());
        }
        let token = match &api.token_file {
            Some(f) => Some(Arc::new(ApiToken::load(&Config::resolve(home, f))?)),
            None => None,
        };
        Ok(Self {
            token,
            remote: api.allow_remote,
            allowed_hosts,
        })
    }

    /// Whether a request naming `host` (its `Host` header) may be answered.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return false;
        };
        // `Authority` accepts `user@host`; a Host header never carries user information.
        if host.contains('@') {
            return false;
        }
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        let name = authority.host();
        // `Authority` leaves the port unchecked: it must be absent or a number.
        let port_ok = match authority.as_str().get(name.len()..) {
            Some("") => true,
            Some(rest) => rest
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok()),
            None => false,
        };
        if !port_ok {
            return false;
        }
        let bare = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return is_loopback(ip) || self.remote;
        }
        let name = bare.to_ascii_lowercase();
        name == "localhost" || (self.remote && self.allowed_hosts.contains(&name))
    }

    /// Whether a request with this `Authorization` header may be answered.
    pub fn authorized(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let Some(value) = authorization else {
            return false;
        };
        let value = value.as_bytes();
        let Some(space) = value.iter().position(|b| *b == b' ') else {
            return false;
        };
        let (scheme, rest) = value.split_at(space);
        scheme.eq_ignore_ascii_case(b"bearer") && token.matches(rest.trim_ascii_start())
    }
}

/// Whether `ip` is a loopback address (an IPv4-mapped one included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The middleware in front of every route: 421 for a `Host` that is not allowed, then 401
/// without the token (when one is configured), except for `GET /`: the status page is static
/// and holds no data, and it asks for the token itself.
pub async fn guard(State(access): State<Access>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !access.host_allowed(host) {
        debug!(path = %req.uri().path(), "local API: refused a request for a host it does not serve");
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this Host is not served: the local API answers requests for localhost, 127.0.0.1 \
             or [::1] (with `[api] allow_remote`, also IP addresses and the names in \
             `[api] allowed_hosts`)\n",
        )
            .into_response();
    }
    // The status page itself is static and public (it reads `/status` with the token).
    let page = req.method() == axum::http::Method::GET && req.uri().path() == "/";
    if !page && !access.authorized(req.headers().get(header::AUTHORIZATION)) {
        debug!(path = %req.uri().path(), "local API: refused a request without the bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"seedfed\"")],
            "this API needs `Authorization: Bearer <token>` with the token of the node's \
             `[api] token_file`\n",
        )
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(listen: &str) -> ApiSection {
        ApiSection {
            listen: listen.into(),
            ..ApiSection::default()
        }
    }

    #[test]
    fn the_default_is_loopback_without_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let access = Access::from_config(dir.path(), &ApiSection::default()).unwrap();
        assert!(access.token.is_none());
        assert!(access.authorized(None));
        for listen in [
            "127.0.0.1:0",
            "[::1]:0",
            "localhost:0",
            "[::ffff:127.0.0.1]:0",
        ] {
            assert!(
                Access::from_config(dir.path(), &api(listen)).is_ok(),
                "{listen}"
            );
        }
        for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:9400"] {
            let err = Access::from_config(dir.path(), &api(listen)).unwrap_err();
            assert!(
                matches!(err, AccessError::NotLoopback { .. }),
                "{listen}: {err}"
            );
        }
        assert!(matches!(
            Access::from_config(dir.path(), &api("nonsense")),
            Err(AccessError::BadListen { .. })
        ));
        let hosts = ApiSection {
            allowed_hosts: vec!["a.example".into()],
            ..ApiSection::default()
        };
        assert!(matches!(
            Access::from_config(dir.path(), &hosts),
            Err(AccessError::HostsWithoutRemote)
        ));
    }

    #[test]
    fn the_token_is_private_long_enough_and_never_printed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        let write = |text: &str, mode: u32| {
            std::fs::write(&f, text).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("0123456789abcdef-secret\n", 0o600);
        let token = ApiToken::load(&f).unwrap();
        assert!(token.matches(b"0123456789abcdef-secret"));
        assert!(!token.matches(b"0123456789abcdef-secreT"));
        assert!(!token.matches(b"0123456789abcdef-secret\n"));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "[redacted]");
        let access = Access {
            token: Some(Arc::new(token)),
            ..Access::default()
        };
        assert!(!format!("{access:?}").contains("secret"));
        let header = |v: &str| HeaderValue::from_str(v).unwrap();
        assert!(access.authorized(Some(&header("Bearer 0123456789abcdef-secret"))));
        assert!(access.authorized(Some(&header("bearer  0123456789abcdef-secret"))));
        assert!(!access.authorized(Some(&header("Basic 0123456789abcdef-secret"))));
        assert!(!access.authorized(Some(&header("Bearer"))));
        assert!(!access.authorized(None));
        for (text, mode) in [
            ("short\n", 0o600),
            ("has a space in it!!", 0o600),
            ("", 0o600),
        ] {
            write(text, mode);
            let err = ApiToken::load(&f).unwrap_err().to_string();
            assert!(err.contains("at least 16"), "{err}");
            if !text.trim().is_empty() {
                assert!(!err.contains(text.trim()), "{err}");
            }
        }
        write("0123456789abcdef-secret\n", 0o640);
        let err = ApiToken::load(&f).unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && !err.contains("secret"),
            "{err}"
        );
    }

    #[test]
    fn hosts() {
        let local = Access::loopback();
        let remote = Access {
            remote: true,
            allowed_hosts: vec!["node.example".into()],
            ..Access::default()
        };
        for h in [
            "localhost",
            "localhost:9400",
            "127.0.0.1:1",
            "[::1]:9400",
            "[::1]",
            "127.9.9.9",
        ] {
            assert!(local.host_allowed(Some(h)), "{h}");
            assert!(remote.host_allowed(Some(h)), "{h}");
        }
        for h in [
            "192.0.2.1:9400",
            "[2001:db8::1]:1",
            "node.example:9400",
            "NODE.example",
        ] {
            assert!(!local.host_allowed(Some(h)), "{h}");
            assert!(remote.host_allowed(Some(h)), "{h}");
        }
        for h in [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io:9400",
            "node.example.evil.example",
            "x@localhost:9400",
            "localhost:port",
            "localhost:",
            "localhost:99999",
            "[::1]x",
            "",
        ] {
            assert!(!local.host_allowed(Some(h)), "{h}");
            assert!(!remote.host_allowed(Some(h)), "{h}");
        }
        assert!(!local.host_allowed(None));
    }
}
