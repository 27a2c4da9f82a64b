//! Who may use the local HTTP API: a node refuses to serve it on a non-loopback address unless
//! `[api] allow_remote` and `[api] token_file` are both set; requests whose `Host` is not a
//! loopback name (or, with remote access, an IP literal or a name in `[api] allowed_hosts`)
//! are refused with 421 (DNS rebinding); with a token, a request without the right
//! `Authorization: Bearer` header gets 401, on every route but the static status page
//! (`GET /`). The project's own client and the `seedfed` CLI send a proper `Host` and the
//! home's token.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use seedfed_node::config::Config;
use seedfed_node::genesis::Genesis;
use seedfed_node::node::{start_bootstrap, RunningNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "3q2+7w0ZbXVzdC1iZS1sb25nLWVub3VnaA==";

fn genesis() -> Genesis {
    Genesis {
        chain_id: "api-access".into(),
        pow_difficulty: 8,
        validators: vec![],
        key: Default::default(),
        epochs: Default::default(),
        clients: vec![],
    }
}

/// A home whose `config.toml` carries `api` (the body of its `[api]` section).
fn home(dir: &Path, api: &str) -> PathBuf {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let home = dir.join("home");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&home)
        .unwrap();
    let config = format!("[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n\n[api]\n{api}\n");
    std::fs::write(home.join("config.toml"), config).unwrap();
    let token = home.join("api.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    home
}

async fn start(home: &Path) -> Result<RunningNode, String> {
    let config = Config::load(home).map_err(|e| e.to_string())?;
    start_bootstrap(home, &genesis(), &config)
        .await
        .map_err(|e| e.to_string())
}

/// A raw HTTP/1.1 GET with exactly these headers (no implicit `Host`): status and body.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_string())
}

#[tokio::test]
async fn a_non_loopback_bind_without_remote_access_and_token_is_refused() {
    for api in [
        "listen = \"0.0.0.0:0\"",
        "listen = \"[::]:0\"",
        // Remote access without a token is no better.
        "listen = \"0.0.0.0:0\"\nallow_remote = true",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let home = home(dir.path(), api);
        match start(&home).await {
            Ok(node) => {
                node.stop().await;
                panic!("the API was served on a non-loopback address with {api:?}");
            }
            Err(e) => {
                assert!(e.contains("allow_remote = true"), "{api:?}: {e}");
                assert!(e.contains("token_file"), "{api:?}: {e}");
                assert!(!home.join("api.addr").exists(), "{api:?}");
            }
        }
    }
    // A token alone does not open a non-loopback address either.
    let dir = tempfile::tempdir().unwrap();
    let home = home(
        dir.path(),
        "listen = \"0.0.0.0:0\"\ntoken_file = \"api.token\"",
    );
    let e = start(&home).await.err().expect("refused");
    assert!(e.contains("allow_remote = true"), "{e}");
}

#[tokio::test]
async fn a_foreign_host_is_refused_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path(), "listen = \"127.0.0.1:0\"");
    let node = start(&home).await.unwrap();
    let addr = node.api_addr;
    let port = addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.2:{port}"),
    ] {
        let (code, body) = get(addr, "/health", &[("Host", &host)]).await;
        assert_eq!(code, 200, "Host {host}: {body}");
    }
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("user@127.0.0.1:{port}"),
        // Not loopback, and remote access is off.
        format!("192.0.2.1:{port}"),
        String::new(),
    ] {
        let (code, body) = get(addr, "/status", &[("Host", &host)]).await;
        assert_eq!(code, 421, "Host {host:?}: {body}");
        assert!(body.contains("allowed_hosts"), "{body}");
    }
    // No Host at all (HTTP/1.1 requires one).
    let (code, _) = get(addr, "/status", &[]).await;
    assert_eq!(code, 421);
    // The project's client sends a proper Host.
    let status = seedfed_node::api::fetch_status(addr).await.unwrap();
    assert_eq!(status.role, "bootstrap");
    node.stop().await;
}

#[tokio::test]
async fn with_a_token_every_request_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(
        dir.path(),
        "listen = \"127.0.0.1:0\"\ntoken_file = \"api.token\"",
    );
    let node = start(&home).await.unwrap();
    let addr = node.api_addr;
    let host = format!("127.0.0.1:{}", addr.port());
    let right = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {}", TOKEN.replace('3', "4"));
    let short = format!("Bearer {}", &TOKEN[..10]);
    for path in ["/status", "/health", "/ready", "/metrics"] {
        let (code, body) = get(addr, path, &[("Host", &host)]).await;
        assert_eq!(code, 401, "{path} without a token: {body}");
        assert!(!body.contains(TOKEN));
        for bad in [
            &wrong,
            &short,
            &format!("Basic {TOKEN}"),
            &TOKEN.to_string(),
        ] {
            let (code, _) = get(addr, path, &[("Host", &host), ("Authorization", bad)]).await;
            assert_eq!(code, 401, "{path} with {bad:?}");
        }
        let (code, body) = get(addr, path, &[("Host", &host), ("Authorization", &right)]).await;
        assert_eq!(code, 200, "{path} with the token: {body}");
    }
    let (code, body) = get(
        addr,
        "/health",
        &[("Host", &host), ("Authorization", &right)],
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    // The status page is static and public: it loads without the token (and asks for it),
    // but still only for a Host the API serves, and only `GET /` is exempt.
    let (code, page) = get(addr, "/", &[("Host", &host)]).await;
    assert_eq!(code, 200);
    assert!(page.contains("fetch('/status'"), "{page}");
    assert!(!page.contains(TOKEN));
    let (code, _) = get(addr, "/", &[("Host", "evil.example")]).await;
    assert_eq!(code, 421);
    let (code, _) = get(addr, "/?x=1", &[("Host", &host)]).await;
    assert_eq!(code, 200);
    let (code, _) = get(addr, "/status/", &[("Host", &host)]).await;
    assert_eq!(code, 401);
    // A client without the token is told why.
    match seedfed_node::api::fetch_status(addr).await {
        Err(e) => assert!(e.to_string().contains("token"), "{e}"),
        Ok(_) => panic!("a request without the token was answered"),
    }
    // The `seedfed` CLI of the same home sends the token from its config (the address from
    // the home's `api.addr`, or the same given with `--api`).
    let cli = |args: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_seedfed"))
            .arg("--home")
            .arg(&home)
            .args(args)
            .output()
    };
    let out = cli(&["status", "--json"]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["role"], "bootstrap");
    let out = cli(&["status", "--api", &addr.to_string()]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the token in the home's config, the CLI says what is missing.
    let other = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_seedfed"))
        .arg("--home")
        .arg(other.path())
        .args(["status", "--api", &addr.to_string()])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("token_file"), "{err}");
    node.stop().await;
}

#[tokio::test]
async fn remote_access_with_a_token_serves_any_address_to_the_named_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(
        dir.path(),
        "listen = \"0.0.0.0:0\"\nallow_remote = true\ntoken_file = \"api.token\"\n\
         allowed_hosts = [\"seedfed.example.org\"]",
    );
    let node = start(&home).await.unwrap();
    let addr = node.api_addr;
    // Local clients find it on loopback.
    assert!(addr.ip().is_loopback(), "{addr}");
    let port = addr.port();
    let right = format!("Bearer {TOKEN}");
    for host in [
        format!("seedfed.example.org:{port}"),
        "SEEDFED.example.org".to_string(),
        format!("192.0.2.1:{port}"),
        format!("[2001:db8::1]:{port}"),
        format!("localhost:{port}"),
    ] {
        let (code, body) = get(
            addr,
            "/ready",
            &[("Host", &host), ("Authorization", &right)],
        )
        .await;
        assert_eq!(code, 200, "Host {host}: {body}");
        let (code, _) = get(addr, "/ready", &[("Host", &host)]).await;
        assert_eq!(code, 401, "Host {host} without the token");
    }
    for host in ["evil.example", "seedfed.example.org.evil.example"] {
        let (code, body) = get(addr, "/ready", &[("Host", host), ("Authorization", &right)]).await;
        assert_eq!(code, 421, "Host {host}: {body}");
    }
    node.stop().await;
}
