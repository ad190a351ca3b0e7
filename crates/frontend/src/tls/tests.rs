//! The TLS listener against a rustls client on loopback, with the certificates of
//! `testdata/` (made by its `make.sh`).

use super::*;
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_stream::StreamExt;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/tls/testdata")
        .join(name)
}

fn settings(dir: &Path, client_ca: bool) -> TlsConfig {
    TlsConfig {
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
        client_ca_file: client_ca.then(|| dir.join("client-ca.pem")),
        reload_secs: 0,
    }
}

/// Serves `tls` on a loopback port. Each connection is answered with the common name of its
/// client certificate ("-" without one) and closed.
async fn serve(tls: Tls) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut incoming = Incoming::new(listener, Some(Arc::new(tls)));
    tokio::spawn(async move {
        while let Some(connection) = incoming.next().await {
            let mut connection = connection.unwrap();
            tokio::spawn(async move {
                let peer = connection.peer().clone();
                assert!(peer.tls);
                assert_eq!(peer.local_addr, Some(address));
                let name = peer
                    .client
                    .and_then(|c| c.common_name.clone())
                    .unwrap_or_else(|| "-".into());
                let _ = connection.write_all(name.as_bytes()).await;
                let _ = connection.shutdown().await;
            });
        }
    });
    address
}

/// A client trusting the test CA, offering `alpn`, presenting `identity` (a testdata name).
fn client(identity: Option<&str>, alpn: &[u8]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(data("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let chain = CertificateDer::pem_file_iter(data(&format!("{name}.pem")))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(data(&format!("{name}.key"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// The server's answer and the certificate it showed, or why the call failed.
async fn call(address: SocketAddr, connector: &TlsConnector) -> io::Result<(String, Vec<u8>)> {
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await?;
    let (_, session) = stream.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    let cert = session.peer_certificates().unwrap()[0].to_vec();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok((answer, cert))
}

fn der(name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(data(name)).unwrap().to_vec()
}

#[tokio::test]
async fn serves_its_certificate_over_h2_only() {
    let address = serve(Tls::new(&settings(&data(""), false)).unwrap()).await;
    let (answer, cert) = call(address, &client(None, b"h2")).await.unwrap();
    assert_eq!((answer.as_str(), cert), ("-", der("server.pem")));
    let refused = call(address, &client(None, b"http/1.1")).await.unwrap_err();
    assert!(
        refused.to_string().contains("NoApplicationProtocol"),
        "{refused}"
    );
}

#[tokio::test]
async fn mutual_tls_takes_only_clients_of_the_client_ca_and_names_them() {
    let tls = Tls::new(&settings(&data(""), true)).unwrap();
    assert!(tls.mutual());
    let address = serve(tls).await;
    for stranger in [None, Some("stranger")] {
        let refused = call(address, &client(stranger, b"h2")).await;
        assert!(refused.is_err(), "{stranger:?} got in: {refused:?}");
    }
    let (answer, _) = call(address, &client(Some("client"), b"h2")).await.unwrap();
    assert_eq!(answer, "worker-1");

    let chain = vec![CertificateDer::from(der("client.pem"))];
    let cert = ClientCert::parse(&chain).unwrap();
    assert_eq!(cert.common_name.as_deref(), Some("worker-1"));
    assert_eq!(cert.dns_names, ["worker-1.example"]);
    assert_eq!(cert.uris, ["spiffe://chronicle/worker-1"]);
    assert_eq!(
        cert.identities,
        [
            "worker-1",
            "worker-1.example",
            "spiffe://chronicle/worker-1"
        ]
    );
    assert_eq!(cert.chain, chain);
}

#[tokio::test]
async fn plaintext_and_stalled_clients_hold_up_no_one() {
    let tls = Tls::new(&settings(&data(""), false))
        .unwrap()
        .with_handshake_timeout(Duration::from_millis(500));
    let address = serve(tls).await;
    let mut stalled = TcpStream::connect(address).await.unwrap();
    let mut plaintext = TcpStream::connect(address).await.unwrap();
    plaintext
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), plaintext.read_to_end(&mut reply));
    match closed.await.expect("a plaintext client is closed at once") {
        // At most a TLS alert record, then the end.
        Ok(_) => assert!(reply.first().is_none_or(|&b| b == 0x15), "{reply:?}"),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
    }
    let (answer, _) = call(address, &client(None, b"h2")).await.unwrap();
    assert_eq!(answer, "-");
    let mut rest = Vec::new();
    let timed_out = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut rest));
    assert!(timed_out.await.is_ok(), "a stalled handshake is closed");
}

#[tokio::test]
async fn changed_files_are_read_again_and_broken_ones_ignored() {
    let dir = std::env::temp_dir().join(format!("chronicle-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let put = |from: &str, to: &str| std::fs::copy(data(from), dir.join(to)).unwrap();
    put("server.pem", "server.pem");
    put("server.key", "server.key");
    let address = serve(Tls::new(&settings(&dir, false)).unwrap()).await;
    let connector = client(None, b"h2");
    let served = || async { call(address, &connector).await.unwrap().1 };
    assert_eq!(served().await, der("server.pem"));

    put("server2.pem", "server.pem");
    // The key does not match the certificate yet: the old pair stays in use.
    assert_eq!(served().await, der("server.pem"));
    put("server2.key", "server.key");
    assert_eq!(served().await, der("server2.pem"));

    std::fs::write(dir.join("server.pem"), b"not a certificate").unwrap();
    assert_eq!(served().await, der("server2.pem"));
    std::fs::remove_file(dir.join("server.key")).unwrap();
    assert_eq!(served().await, der("server2.pem"));
    put("server.pem", "server.pem");
    put("server.key", "server.key");
    assert_eq!(served().await, der("server.pem"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn files_are_looked_at_once_per_reload_interval() {
    let dir = std::env::temp_dir().join(format!("chronicle-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["server.pem", "server.key"] {
        std::fs::copy(data(name), dir.join(name)).unwrap();
    }
    let mut config = settings(&dir, false);
    config.reload_secs = 3600;
    let address = serve(Tls::new(&config).unwrap()).await;
    std::fs::copy(data("server2.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(data("server2.key"), dir.join("server.key")).unwrap();
    let (_, cert) = call(address, &client(None, b"h2")).await.unwrap();
    assert_eq!(cert, der("server.pem"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_that_make_no_config_are_refused_by_name() {
    let dir = data("");
    let missing = TlsConfig {
        cert_file: dir.join("missing.pem"),
        ..settings(&dir, false)
    };
    let err = Tls::new(&missing).err().unwrap().to_string();
    assert!(err.contains("missing.pem"), "{err}");
    let mismatched = TlsConfig {
        key_file: dir.join("server2.key"),
        ..settings(&dir, false)
    };
    let err = Tls::new(&mismatched).err().unwrap().to_string();
    assert!(err.contains("server.pem and"), "{err}");
    let no_ca = TlsConfig {
        client_ca_file: Some(dir.join("server.key")),
        ..settings(&dir, false)
    };
    let err = Tls::new(&no_ca).err().unwrap().to_string();
    assert!(err.contains("no PEM certificate"), "{err}");
}

#[tokio::test]
async fn calls_carry_the_peer_and_its_client_certificate_in_their_extensions() {
    use crate::health::HealthService;
    use chronicle_api::health::HealthCheckRequest;
    use chronicle_api::health::health_check_response::ServingStatus;
    use chronicle_api::health::health_client::HealthClient;
    use chronicle_api::health::health_server::HealthServer;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let tls = Tls::new(&settings(&data(""), true)).unwrap();
    let (seen, mut peers) = tokio::sync::mpsc::unbounded_channel();
    // Where an authorizer would sit: a layer over the services.
    let record = tower::util::MapRequestLayer::new(move |request: http::Request<_>| {
        let _ = seen.send(request.extensions().get::<Peer>().cloned());
        request
    });
    let (_status, watched) = tokio::sync::watch::channel(ServingStatus::Serving);
    let server = tonic::transport::Server::builder()
        .layer(record)
        .add_service(HealthServer::new(HealthService::following(watched)))
        .serve_with_incoming(Incoming::new(listener, Some(Arc::new(tls))));
    tokio::spawn(server);

    let connector = client(Some("client"), b"h2");
    let connect = tower::service_fn(move |_: http::Uri| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(address).await?;
            let name = ServerName::try_from("localhost").unwrap();
            let stream = connector.connect(name, tcp).await?;
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(connect)
        .await
        .unwrap();
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(answer.get_ref().status, ServingStatus::Serving as i32);
    let peer = peers.recv().await.unwrap().expect("the call's Peer");
    assert!(peer.tls);
    assert_eq!(peer.local_addr, Some(address));
    let cert = peer.client.expect("the client certificate");
    assert_eq!(cert.common_name.as_deref(), Some("worker-1"));
    assert_eq!(cert.uris, ["spiffe://chronicle/worker-1"]);
}
