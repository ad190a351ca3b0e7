//! Who is on the other end of a connection: its address, and under mTLS the names in the
//! client certificate it was verified by.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// tonic puts one in the extensions of every request of the connection (`Connected`).
#[derive(Clone, Debug)]
pub struct Peer {
    pub remote_addr: Option<SocketAddr>,
    pub local_addr: Option<SocketAddr>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The client's certificate; only under mTLS, where it was verified against the client CA.
    pub client: Option<Arc<ClientCert>>,
}

/// The names a verified client certificate gives its holder.
#[derive(Debug)]
pub struct ClientCert {
    /// The subject's common name; the last one if it has several, as Go's crypto/x509
    /// (which Temporal's authorizers read) takes it.
    pub common_name: Option<String>,
    /// DNS names of the subject alternative names.
    pub dns_names: Vec<String>,
    /// URIs of the subject alternative names (a SPIFFE id, for instance).
    pub uris: Vec<String>,
    /// Each of the names above, the common name first, made once per connection so an
    /// authorizer matching a call's identities against its table borrows them.
    pub identities: Vec<String>,
    /// The chain as the client sent it, its own certificate first.
    pub chain: Vec<CertificateDer<'static>>,
}

impl ClientCert {
    /// None when the chain is empty or its first certificate does not parse (rustls has
    /// verified it by then, so that does not happen).
    pub(crate) fn parse(chain: &[CertificateDer<'_>]) -> Option<Self> {
        let leaf = chain.first()?;
        let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
        let common_name = common_name(cert.subject());
        let dns_names: Vec<String> = cert.valid_dns_names().map(str::to_owned).collect();
        let uris: Vec<String> = cert.valid_uri_names().map(str::to_owned).collect();
        let identities = common_name
            .iter()
            .chain(&dns_names)
            .chain(&uris)
            .cloned()
            .collect();
        Some(Self {
            common_name,
            dns_names,
            uris,
            identities,
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
        })
    }
}

/// DER encoding of the id-at-commonName attribute type, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID: u8 = 0x06;
const SET: u8 = 0x31;
const SEQUENCE: u8 = 0x30;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;

/// One DER element: its tag, its contents and what follows it. Only the short tags and
/// definite lengths of X.509 names.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// The common name in a Name's RDNSequence (the contents of its outer SEQUENCE, as webpki
/// gives a subject).
fn common_name(mut rdns: &[u8]) -> Option<String> {
    let mut found = None;
    while !rdns.is_empty() {
        let (tag, mut set, rest) = element(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        while !set.is_empty() {
            let (tag, attribute, rest) = element(set)?;
            set = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = element(attribute)?;
            if tag != OID || oid != COMMON_NAME {
                continue;
            }
            let (tag, text, _) = element(value)?;
            if matches!(tag, UTF8_STRING | PRINTABLE_STRING | IA5_STRING) {
                found = std::str::from_utf8(text).ok().map(str::to_owned);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        let mut inner = vec![OID, oid.len() as u8];
        inner.extend_from_slice(oid);
        inner.extend_from_slice(&[tag, value.len() as u8]);
        inner.extend_from_slice(value);
        let mut sequence = vec![SEQUENCE, inner.len() as u8];
        sequence.extend(inner);
        let mut set = vec![SET, sequence.len() as u8];
        set.extend(sequence);
        set
    }

    #[test]
    fn the_last_common_name_is_taken_and_bad_names_give_none() {
        let organization = [0x55, 0x04, 0x0a];
        let mut name = attribute(&organization, UTF8_STRING, b"Acme");
        name.extend(attribute(COMMON_NAME, PRINTABLE_STRING, b"first"));
        name.extend(attribute(COMMON_NAME, UTF8_STRING, b"worker-1"));
        assert_eq!(common_name(&name).as_deref(), Some("worker-1"));
        assert_eq!(
            common_name(&attribute(&organization, UTF8_STRING, b"x")),
            None
        );
        assert_eq!(common_name(&name[..name.len() - 2]), None);
        assert_eq!(common_name(&[]), None);
        // A long-form length.
        let long = "n".repeat(200);
        let mut inner = vec![OID, 3, 0x55, 0x04, 0x03, UTF8_STRING, 0x81, 200];
        inner.extend_from_slice(long.as_bytes());
        let mut sequence = vec![SEQUENCE, 0x81, inner.len() as u8];
        sequence.extend(inner);
        let mut set = vec![SET, 0x81, sequence.len() as u8];
        set.extend(sequence);
        assert_eq!(common_name(&set), Some(long));
    }
}
