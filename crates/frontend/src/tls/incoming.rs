//! The connections tonic serves: accepted TCP streams, plaintext as they are or TLS once their
//! handshake (in a task of its own) succeeded.

use super::{Peer, Tls, peer::ClientCert};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpIncoming};

/// Handshakes under way at once; past it no connection is accepted until one ends, so a
/// flood of clients that never finish waits in the listen backlog, not in memory.
const MAX_HANDSHAKES: usize = 1024;

/// The stream of connections `Frontend::serve` takes. Dropping it closes the listener and
/// abandons the handshakes under way.
pub struct Incoming {
    tcp: TcpIncoming,
    tls: Option<Arc<Tls>>,
    handshakes: JoinSet<Option<Connection>>,
    listener_closed: bool,
}

impl Incoming {
    /// Connections accepted on `listener`, handshaken with `tls` if given.
    pub fn new(listener: tokio::net::TcpListener, tls: Option<Arc<Tls>>) -> Self {
        Self {
            tcp: TcpIncoming::from(listener).with_nodelay(Some(true)),
            tls,
            handshakes: JoinSet::new(),
            listener_closed: false,
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<Connection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(tls) = &this.tls else {
            return Pin::new(&mut this.tcp)
                .poll_next(cx)
                .map(|next| next.map(|accepted| accepted.map(Connection::plain)));
        };
        while !this.listener_closed && this.handshakes.len() < MAX_HANDSHAKES {
            match Pin::new(&mut this.tcp).poll_next(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    this.handshakes.spawn(handshake(tls.clone(), stream));
                }
                // tonic logs accept errors and goes on, as it does for its own listener.
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.listener_closed = true,
                Poll::Pending => break,
            }
        }
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(connection)))) => {
                    return Poll::Ready(Some(Ok(connection)));
                }
                // A failed handshake was logged by its task; a panicked one is only lost.
                Poll::Ready(Some(Ok(None) | Err(_))) => continue,
                Poll::Ready(None) if this.listener_closed => return Poll::Ready(None),
                // Woken by the listener (polled above) or a handshake ending.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

async fn handshake(tls: Arc<Tls>, stream: TcpStream) -> Option<Connection> {
    let remote = stream.peer_addr().ok();
    let local = stream.local_addr().ok();
    let from = || remote.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let acceptor = TlsAcceptor::from(tls.config());
    match tokio::time::timeout(tls.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let client = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(ClientCert::parse)
                .map(Arc::new);
            let peer = Peer {
                remote_addr: remote,
                local_addr: local,
                tls: true,
                client,
            };
            Some(Connection {
                io: Io::Tls(Box::new(stream)),
                peer,
            })
        }
        Ok(Err(e)) => {
            tracing::info!(remote = %from(), error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(remote = %from(), "TLS handshake timed out");
            None
        }
    }
}

/// One client connection, plaintext or TLS, and who is on its other end.
pub struct Connection {
    io: Io,
    peer: Peer,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection {
    fn plain(stream: TcpStream) -> Self {
        let peer = Peer {
            remote_addr: stream.peer_addr().ok(),
            local_addr: stream.local_addr().ok(),
            tls: false,
            client: None,
        };
        Self {
            io: Io::Plain(stream),
            peer,
        }
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }
}

impl Connected for Connection {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(stream) => stream.is_write_vectored(),
            Io::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
