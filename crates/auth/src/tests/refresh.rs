//! Keys change: the JWKS file rewritten, a URL serving new keys, a reload asked for by an
//! unknown key id.

use super::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const API: &str = "ListWorkflowExecutions";

#[tokio::test]
async fn a_jwks_file_change_is_picked_up_by_refresh() {
    let (old, new) = (Signer::rsa1(), Signer::ec2());
    let (authz, file) = authorizer(&[&old]);
    let old_token = old.bearer(&["default:read"]);
    let new_token = new.bearer(&["default:read"]);
    allowed(&authz, &call(API, "default", &old_token));
    denied(
        &authz,
        &call(API, "default", &new_token),
        DeniedKind::Unauthenticated,
    );

    file.write(&[&new]);
    authz.refresh().await.unwrap();
    allowed(&authz, &call(API, "default", &new_token));
    let retired = denied(
        &authz,
        &call(API, "default", &old_token),
        DeniedKind::Unauthenticated,
    );
    assert!(
        retired.message.contains("unknown key \"rsa-1\""),
        "{retired}"
    );

    // A file that cannot be read or parsed leaves the keys as they were.
    std::fs::write(&file.0, "{\"keys\": [").unwrap();
    assert!(authz.refresh().await.is_err());
    allowed(&authz, &call(API, "default", &new_token));
}

#[tokio::test]
async fn an_unknown_key_id_makes_the_refresh_task_reload_early() {
    let (old, new) = (Signer::rsa1(), Signer::rsa2());
    let file = JwksFile::new(&[&old]);
    let config = AuthConfig {
        jwks_refresh_secs: 3600,
        ..config(&file)
    };
    let authz = Authorizer::build(&config, Duration::from_millis(50)).unwrap();
    let task = tokio::spawn(authz.clone().run_refresh());

    file.write(&[&old, &new]);
    let token = new.bearer(&["default:read"]);
    denied(
        &authz,
        &call(API, "default", &token),
        DeniedKind::Unauthenticated,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while authz.authorize(&call(API, "default", &token)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key was never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    allowed(
        &authz,
        &call(API, "default", &old.bearer(&["default:read"])),
    );
    task.abort();
}

#[tokio::test]
async fn the_refresh_task_ends_at_once_without_keys_to_reload() {
    let off = Authorizer::new(&AuthConfig::default()).unwrap();
    off.run_refresh().await;
    let keyless = Authorizer::new(&AuthConfig {
        enabled: true,
        ..AuthConfig::default()
    })
    .unwrap();
    keyless.run_refresh().await;
}

/// Serves `body` as JSON to every request on a loopback port, for as long as it runs.
async fn serve_jwks(body: String) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, server)
}

#[tokio::test]
async fn keys_are_fetched_from_a_jwks_url() {
    let (rsa, ec) = (Signer::rsa1(), Signer::ec1());
    let (url, server) = serve_jwks(jwks(&[&rsa, &ec])).await;
    let authz = Authorizer::new(&AuthConfig {
        enabled: true,
        jwks_url: Some(url),
        ..AuthConfig::default()
    })
    .unwrap();
    let token = ec.bearer(&["default:read"]);
    // Nothing is fetched before the first refresh.
    denied(
        &authz,
        &call(API, "default", &token),
        DeniedKind::Unauthenticated,
    );
    authz.refresh().await.unwrap();
    allowed(&authz, &call(API, "default", &token));
    allowed(
        &authz,
        &call(API, "default", &rsa.bearer(&["default:read"])),
    );

    // The URL gone, a refresh fails and the fetched keys stay.
    server.abort();
    let _ = server.await;
    let err = authz.refresh().await.unwrap_err();
    assert!(err.to_string().contains("cannot fetch"), "{err}");
    allowed(&authz, &call(API, "default", &token));
}

#[tokio::test]
async fn the_refresh_task_fetches_a_url_at_once() {
    let signer = Signer::ec1();
    let (url, server) = serve_jwks(jwks(&[&signer])).await;
    let authz = Authorizer::new(&AuthConfig {
        enabled: true,
        jwks_url: Some(url),
        ..AuthConfig::default()
    })
    .unwrap();
    let task = tokio::spawn(authz.clone().run_refresh());
    let token = signer.bearer(&["default:read"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while authz.authorize(&call(API, "default", &token)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the URL was never fetched"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    server.abort();
}
