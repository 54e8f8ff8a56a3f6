//! TLS for `amqps://`: rustls (with the *ring* provider) under tokio-rustls.
//!
//! By default the server's certificate chain and host name are verified against Mozilla's root
//! program, compiled in through `webpki-roots` (so the result does not depend on what the
//! machine has installed), or against the CA certificates of a PEM file (`cacertfile`). To
//! trust the operating system's store, name its bundle as the CA file, e.g.
//! `cacertfile=/etc/ssl/certs/ca-certificates.crt`.
//!
//! The name checked, and sent as SNI, is the host connected to, or
//! `server_name_indication` when given. An IP address is checked against the certificate's
//! IP address entries and sends no SNI.
//!
//! A client certificate and key (`certfile`, `keyfile`, PEM; the key as PKCS#8, PKCS#1 or
//! SEC1) make it mutual TLS, which SASL `EXTERNAL` (`auth_mechanism=external`) builds on: the
//! broker takes the user name from the certificate.
//!
//! `verify=verify_none` accepts any server certificate. It is for tests only, and every
//! connection made with it logs a warning.
//!
//! Everything is also available in code, through [`TlsOptions`]' setters, and a ready
//! `rustls::ClientConfig` can be handed over whole with [`TlsOptions::with_client_config`].
//!
//! ```no_run
//! use amqp_client::{Connection, ConnectionConfig, SaslMechanism, TlsOptions};
//!
//! # async fn demo() -> Result<(), amqp_client::Error> {
//! // From a URI:
//! let conn = Connection::connect(
//!     "amqps://broker.example/%2f?cacertfile=/etc/prisem/ca.pem\
//!      &certfile=/etc/prisem/client.pem&keyfile=/etc/prisem/client_key.pem\
//!      &auth_mechanism=external",
//! )
//! .await?;
//! # drop(conn);
//! // The same in code:
//! let cfg = ConnectionConfig::default()
//!     .with_host("broker.example")
//!     .with_port(5671)
//!     .with_auth_mechanisms(vec![SaslMechanism::External])
//!     .with_tls(
//!         TlsOptions::default()
//!             .with_ca_cert_file("/etc/prisem/ca.pem")
//!             .with_client_cert("/etc/prisem/client.pem", "/etc/prisem/client_key.pem"),
//!     );
//! let conn = Connection::connect_with(cfg).await?;
//! # drop(conn);
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! A failed handshake is [`crate::Error::Tls`] with a [`TlsError`] (also found with
//! [`TlsError::from_error`]); its [`TlsErrorKind`] says what
//! failed: unknown CA, self-signed or expired certificate, wrong host name, a server that does
//! not speak TLS, … Nothing AMQP has been sent by then. Files that cannot be read or hold no
//! usable PEM item are [`crate::Error::Config`], reported before connecting.

use core::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::auth::SaslMechanism;
use crate::config::ConnectionConfig;
use crate::error::{Error, Result};
use crate::uri::{TlsOptions, TlsVerify};

/// A ready rustls client configuration, for when [`TlsOptions`]' files and switches are not
/// enough (a certificate held in memory or in a hardware token, a pinned key, other roots,
/// ALPN, …).
///
/// Two values are equal when they share the same `ClientConfig`.
///
/// ```
/// use std::sync::Arc;
/// use amqp_client::rustls::{ClientConfig, RootCertStore};
/// use amqp_client::{TlsClientConfig, TlsOptions};
///
/// let provider = Arc::new(amqp_client::rustls::crypto::ring::default_provider());
/// let config = ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()
///     .unwrap()
///     .with_root_certificates(RootCertStore::empty())
///     .with_no_client_auth();
/// let tls = TlsOptions::default().with_client_config(config);
/// assert!(tls.client_config.is_some());
/// ```
#[derive(Clone)]
pub struct TlsClientConfig(Arc<ClientConfig>);

impl TlsClientConfig {
    /// Wraps a rustls client configuration.
    pub fn new(config: impl Into<Arc<ClientConfig>>) -> Self {
        Self(config.into())
    }

    /// The rustls configuration.
    pub fn get(&self) -> &Arc<ClientConfig> {
        &self.0
    }

    fn has_client_cert(&self) -> bool {
        self.0.client_auth_cert_resolver.has_certs()
    }
}

impl From<ClientConfig> for TlsClientConfig {
    fn from(config: ClientConfig) -> Self {
        Self::new(config)
    }
}

impl From<Arc<ClientConfig>> for TlsClientConfig {
    fn from(config: Arc<ClientConfig>) -> Self {
        Self::new(config)
    }
}

impl PartialEq for TlsClientConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsClientConfig {}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("client_cert", &self.has_client_cert())
            .finish_non_exhaustive()
    }
}

impl TlsOptions {
    /// Trusts the CA certificates of a PEM file instead of the bundled roots (`cacertfile`).
    pub fn with_ca_cert_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_cert_file = Some(path.into());
        self
    }

    /// Presents a client certificate chain and its private key, both PEM files, for mutual
    /// TLS and SASL `EXTERNAL` (`certfile`, `keyfile`).
    pub fn with_client_cert(
        mut self,
        cert_file: impl Into<std::path::PathBuf>,
        key_file: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.cert_file = Some(cert_file.into());
        self.key_file = Some(key_file.into());
        self
    }

    /// Sends `name` in SNI and checks the server's certificate against it instead of the
    /// host connected to (`server_name_indication`).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Sets whether the server's certificate is verified (`verify`).
    /// [`TlsVerify::VerifyNone`] is for tests only.
    pub fn with_verify(mut self, verify: TlsVerify) -> Self {
        self.verify = verify;
        self
    }

    /// Uses a ready rustls configuration. It replaces the CA file, client certificate and
    /// `verify` settings (giving both is a configuration error); the server name still
    /// applies.
    pub fn with_client_config(mut self, config: impl Into<TlsClientConfig>) -> Self {
        self.client_config = Some(config.into());
        self
    }

    fn has_client_cert(&self) -> bool {
        match &self.client_config {
            Some(c) => c.has_client_cert(),
            None => self.cert_file.is_some() && self.key_file.is_some(),
        }
    }
}

/// What went wrong in a TLS handshake.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsErrorKind {
    /// The server's certificate does not chain to a trusted CA.
    UnknownIssuer,
    /// The server's certificate is self-signed and not itself trusted.
    SelfSigned,
    /// The server's certificate is not valid for the name checked.
    NameMismatch,
    /// The server's certificate (or one above it) has expired.
    Expired,
    /// The server's certificate (or one above it) is not valid yet.
    NotYetValid,
    /// The server's certificate was revoked.
    Revoked,
    /// Another problem with the server's certificate (bad signature, wrong key usage, …).
    BadCertificate,
    /// The server refused the handshake with a TLS alert (for example because it wants a
    /// client certificate it did not get, or does not trust the one it got).
    AlertReceived,
    /// The peer does not speak TLS; for example a plain `amqp://` port answering with an AMQP
    /// protocol header.
    NotTls,
    /// The peer answered in TLS where plain AMQP was expected: `amqp://` was used for a TLS
    /// port.
    ServerWantsTls,
    /// The peer closed the connection during the handshake.
    Closed,
    /// Anything else (no common protocol version or cipher suite, a malformed message, …).
    Other,
}

/// A failed TLS handshake: what failed, with which server, and rustls' own account of it.
///
/// The client reports it as [`crate::Error::Tls`]; see [`TlsError::from_error`].
#[derive(Debug, Clone)]
pub struct TlsError {
    kind: TlsErrorKind,
    server: String,
    message: String,
    detail: Option<String>,
}

impl TlsError {
    fn new(kind: TlsErrorKind, server: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            server: server.to_owned(),
            message: message.into(),
            detail: None,
        }
    }

    fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// What failed.
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }

    /// The server, as `host:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The TLS error inside a client error, if it is one.
    pub fn from_error(error: &Error) -> Option<&Self> {
        match error {
            Error::Tls(e) => Some(e),
            Error::Io(e) => e.get_ref().and_then(|e| e.downcast_ref::<Self>()),
            _ => None,
        }
    }

    fn into_io(self) -> io::Error {
        let kind = match self.kind {
            TlsErrorKind::Closed => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS with {}: {}", self.server, self.message)?;
        match &self.detail {
            Some(d) => write!(f, " ({d})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for TlsError {}

/// The stream a TLS connection runs over.
pub(crate) type TlsTransport<T> = TlsStream<FirstByteCheck<T>>;

/// Fails early with a SASL `EXTERNAL` login that cannot work: `EXTERNAL` first in the
/// preference list (so it is what the broker will be asked for) but no client certificate to
/// take the identity from.
pub(crate) fn check_external(cfg: &ConnectionConfig) -> Result<()> {
    if cfg.auth_mechanisms.first() != Some(&SaslMechanism::External) {
        return Ok(());
    }
    match &cfg.tls {
        None => Err(Error::Config(
            "SASL EXTERNAL takes the user from the TLS client certificate, but this is a \
             plain amqp:// connection: use amqps:// with certfile and keyfile"
                .to_owned(),
        )),
        Some(tls) if !tls.has_client_cert() => Err(Error::Config(
            "SASL EXTERNAL takes the user from the TLS client certificate, but no client \
             certificate is configured: set certfile and keyfile"
                .to_owned(),
        )),
        Some(_) => Ok(()),
    }
}

/// Runs the TLS handshake over `io` connected to `host:port`.
pub(crate) async fn handshake<T>(
    io: T,
    host: &str,
    port: u16,
    opts: &TlsOptions,
) -> Result<TlsTransport<T>>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let server = peer_name(host, port);
    let config = client_config(opts)?;
    let name = opts.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned()).map_err(|_| {
        Error::Config(format!(
            "`{name}` is neither a DNS name nor an IP address, so it cannot be checked \
             against the server's certificate"
        ))
    })?;
    if opts.client_config.is_none() && opts.verify == TlsVerify::VerifyNone {
        tracing::warn!(
            server = %server,
            "TLS certificate verification is OFF (verify_none): the server is not \
             authenticated and anyone on the path can read and change this connection"
        );
    }
    let io = FirstByteCheck::new(io, Expect::Tls, server.clone());
    TlsConnector::from(config)
        .connect(server_name, io)
        .await
        .map_err(|e| Error::io(classify(e, &server, name, opts)))
}

fn peer_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Turns the options into a rustls configuration, reading the PEM files they name.
pub(crate) fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>> {
    if let Some(config) = &opts.client_config {
        if opts.ca_cert_file.is_some()
            || opts.cert_file.is_some()
            || opts.key_file.is_some()
            || opts.verify != TlsVerify::VerifyPeer
        {
            return Err(Error::Config(
                "a ready TLS client configuration replaces cacertfile, certfile, keyfile and \
                 verify; give one or the other"
                    .to_owned(),
            ));
        }
        return Ok(config.0.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match opts.verify {
        TlsVerify::VerifyPeer => {
            let roots = match &opts.ca_cert_file {
                Some(path) => load_roots(path)?,
                None => RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
            };
            Arc::new(PeerVerifier::new(roots, provider.clone())?)
        }
        TlsVerify::VerifyNone => Arc::new(AcceptAnyCert {
            algorithms: provider.signature_verification_algorithms,
        }),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&opts.cert_file, &opts.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert)?;
            let key_der = load_key(key)?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                let why = match e {
                    rustls::Error::InconsistentKeys(_) => {
                        "the key does not belong to the certificate".to_owned()
                    }
                    e => e.to_string(),
                };
                Error::Config(format!(
                    "TLS client certificate {} with key {}: {why}",
                    cert.display(),
                    key.display()
                ))
            })?
        }
        (Some(_), None) => {
            return Err(Error::Config(
                "TLS certfile is set but keyfile is not: the client certificate needs its \
                 private key"
                    .to_owned(),
            ))
        }
        (None, Some(_)) => {
            return Err(Error::Config(
                "TLS keyfile is set but certfile is not: the private key needs its \
                 certificate"
                    .to_owned(),
            ))
        }
    };
    Ok(Arc::new(config))
}

fn pem_error(what: &str, path: &Path, e: pem::Error) -> Error {
    let why = match e {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        other => format!("it is not valid PEM: {other}"),
    };
    Error::Config(format!("TLS {what} {}: {why}", path.display()))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("certificate file", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate file", path, e))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "TLS certificate file {} holds no PEM certificate (`BEGIN CERTIFICATE`)",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => Error::Config(format!(
            "TLS key file {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        )),
        e => pem_error("key file", path, e),
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in load_certs(path)
        .map_err(|e| match e {
            Error::Config(msg) => Error::Config(msg.replace("certificate file", "CA file")),
            e => e,
        })?
        .into_iter()
        .enumerate()
    {
        roots.add(cert).map_err(|e| {
            Error::Config(format!(
                "TLS CA file {}: certificate {} cannot be a trust anchor: {e}",
                path.display(),
                i + 1
            ))
        })?;
    }
    Ok(roots)
}

/// Marks a certificate error as "self-signed" (rustls itself reports those as an unknown
/// issuer).
#[derive(Debug)]
struct SelfSigned;

impl fmt::Display for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("self-signed certificate")
    }
}

impl std::error::Error for SelfSigned {}

/// The standard WebPKI verification, with self-signed certificates told apart from other
/// unknown issuers.
#[derive(Debug)]
struct PeerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl PeerVerifier {
    fn new(roots: RootCertStore, provider: Arc<CryptoProvider>) -> Result<Self> {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| Error::Config(format!("TLS: cannot verify servers: {e}")))?;
        Ok(Self { webpki, provider })
    }

    /// Whether `cert` is signed by its own key: verified with itself as the only trust
    /// anchor, it fails for some other reason than an unknown issuer (or passes).
    fn is_self_signed(
        &self,
        cert: &CertificateDer<'_>,
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let mut own = RootCertStore::empty();
        if own.add(cert.clone().into_owned()).is_err() {
            return false;
        }
        let Ok(verifier) =
            WebPkiServerVerifier::builder_with_provider(Arc::new(own), self.provider.clone())
                .build()
        else {
            return false;
        };
        match verifier.verify_server_cert(cert, &[], name, &[], now) {
            Ok(_) => true,
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            )) => false,
            Err(rustls::Error::InvalidCertificate(_)) => true,
            Err(_) => false,
        }
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if intermediates.is_empty()
                    && self.is_self_signed(end_entity, server_name, now) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(SelfSigned)),
                )))
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `verify_none`: any certificate is accepted. The handshake signatures are still checked,
/// which proves only that the server holds the key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Says in words why a handshake failed.
fn classify(e: io::Error, server: &str, name: &str, opts: &TlsOptions) -> io::Error {
    if e.get_ref().is_some_and(|i| i.is::<TlsError>()) {
        return e;
    }
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        let error = match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => TlsError::new(
                TlsErrorKind::Closed,
                server,
                "the server closed the connection during the TLS handshake",
            )
            .with_detail(&e),
            _ => return io::Error::new(e.kind(), format!("TLS handshake with {server}: {e}")),
        };
        return error.into_io();
    };
    let trusted = || match (&opts.client_config, &opts.ca_cert_file) {
        (Some(_), _) => "the roots of the given TLS client configuration".to_owned(),
        (None, Some(path)) => format!("the CA file {}", path.display()),
        (None, None) => "the bundled Mozilla roots".to_owned(),
    };
    let (kind, message) = match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => (
                TlsErrorKind::UnknownIssuer,
                format!(
                    "the server's certificate is not signed by a trusted CA (trusted: {})",
                    trusted()
                ),
            ),
            CertificateError::Other(OtherError(other)) if other.is::<SelfSigned>() => (
                TlsErrorKind::SelfSigned,
                format!(
                    "the server's certificate is self-signed and not trusted (trusted: {})",
                    trusted()
                ),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (
                    TlsErrorKind::NameMismatch,
                    format!("the server's certificate is not valid for the name `{name}`"),
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                TlsErrorKind::Expired,
                "the server's certificate has expired".to_owned(),
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                TlsErrorKind::NotYetValid,
                "the server's certificate is not valid yet".to_owned(),
            ),
            CertificateError::Revoked => (
                TlsErrorKind::Revoked,
                "the server's certificate was revoked".to_owned(),
            ),
            _ => (
                TlsErrorKind::BadCertificate,
                "the server's certificate was rejected".to_owned(),
            ),
        },
        rustls::Error::AlertReceived(alert) => (
            TlsErrorKind::AlertReceived,
            format!("the server refused the TLS handshake with alert {alert:?}"),
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => (
            TlsErrorKind::NotTls,
            "the server did not answer with a valid TLS handshake".to_owned(),
        ),
        _ => (TlsErrorKind::Other, "the TLS handshake failed".to_owned()),
    };
    let error = TlsError::new(kind, server, message);
    match kind {
        // rustls' own words would only repeat ours (it saw an unknown issuer).
        TlsErrorKind::SelfSigned => error,
        _ => error.with_detail(tls),
    }
    .into_io()
}

/// Which protocol the peer's first octet should belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Plain AMQP: a frame or a protocol header, never a TLS record.
    Amqp,
    /// TLS: a handshake or alert record.
    Tls,
}

/// TLS record types a server's first record can have: alert (21) and handshake (22).
const TLS_ALERT: u8 = 0x15;
const TLS_HANDSHAKE: u8 = 0x16;

/// Checks the first octet the peer sends, so that `amqp://` to a TLS port and `amqps://` to a
/// plain port fail at once, saying so, instead of with a puzzling decode error. After the
/// first read it only passes calls through.
#[derive(Debug)]
pub(crate) struct FirstByteCheck<T> {
    io: T,
    expect: Expect,
    checked: bool,
    server: String,
}

impl<T> FirstByteCheck<T> {
    /// Wraps `io`, connected to `server` (`host:port`), expecting `expect`.
    pub(crate) fn new(io: T, expect: Expect, server: String) -> Self {
        Self {
            io,
            expect,
            checked: false,
            server,
        }
    }

    /// A plain AMQP transport to `host:port`.
    pub(crate) fn plain(io: T, host: &str, port: u16) -> Self {
        Self::new(io, Expect::Amqp, peer_name(host, port))
    }

    fn check(&self, first: &[u8]) -> Option<io::Error> {
        let (&octet, rest) = first.split_first()?;
        let tls_record = matches!(octet, TLS_ALERT | TLS_HANDSHAKE)
            && rest.first().is_none_or(|&major| major == 3);
        let error = match self.expect {
            Expect::Amqp if tls_record => TlsError::new(
                TlsErrorKind::ServerWantsTls,
                &self.server,
                "the server answered in TLS: this is a TLS port, connect with amqps://",
            ),
            Expect::Tls if octet == b'A' => TlsError::new(
                TlsErrorKind::NotTls,
                &self.server,
                "the server answered the TLS handshake with an AMQP protocol header: this \
                 is a plain AMQP port, connect with amqp:// or to the TLS port",
            ),
            Expect::Tls if !tls_record => TlsError::new(
                TlsErrorKind::NotTls,
                &self.server,
                format!("the server does not speak TLS (its first octet is {octet:#04x})"),
            ),
            _ => return None,
        };
        Some(error.into_io())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FirstByteCheck<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.checked {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let new = buf.filled().get(before..).unwrap_or_default();
        if !new.is_empty() {
            this.checked = true;
            if let Some(e) = this.check(new) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FirstByteCheck<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn first_read(expect: Expect, peer_sends: &[u8]) -> io::Result<Vec<u8>> {
        let (client, mut server) = tokio::io::duplex(64);
        server.write_all(peer_sends).await?;
        let mut io = FirstByteCheck::new(client, expect, "h:1".to_owned());
        let mut buf = vec![0; peer_sends.len()];
        let n = io.read(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    fn kind_of(e: &io::Error) -> Option<TlsErrorKind> {
        e.get_ref()
            .and_then(|e| e.downcast_ref::<TlsError>())
            .map(TlsError::kind)
    }

    #[tokio::test]
    async fn a_tls_record_where_amqp_is_expected_is_named() {
        for record in [
            &b"\x15\x03\x01\x00\x02\x02\x0a"[..],
            b"\x16\x03\x03\x00\x10",
            b"\x15",
        ] {
            let e = first_read(Expect::Amqp, record).await.unwrap_err();
            assert_eq!(kind_of(&e), Some(TlsErrorKind::ServerWantsTls));
            assert!(e.to_string().contains("amqps://"), "{e}");
        }
        // AMQP's own first octets pass, and so does an octet 0x15 not followed by a TLS version.
        for ok in [&b"\x01\x00\x00"[..], b"AMQP\x00\x00\x09\x01", b"\x15\x07"] {
            assert_eq!(first_read(Expect::Amqp, ok).await.unwrap(), ok);
        }
    }

    #[tokio::test]
    async fn anything_but_a_tls_record_where_tls_is_expected_is_named() {
        let e = first_read(Expect::Tls, b"AMQP\x00\x00\x09\x01")
            .await
            .unwrap_err();
        assert_eq!(kind_of(&e), Some(TlsErrorKind::NotTls));
        assert!(e.to_string().contains("AMQP protocol header"), "{e}");
        let e = first_read(Expect::Tls, b"HTTP/1.1 400").await.unwrap_err();
        assert_eq!(kind_of(&e), Some(TlsErrorKind::NotTls));
        assert!(e.to_string().contains("0x48"), "{e}");
        let hello = b"\x16\x03\x03\x00\x04";
        assert_eq!(first_read(Expect::Tls, hello).await.unwrap(), hello);
    }

    #[tokio::test]
    async fn only_the_first_octet_is_checked() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut io = FirstByteCheck::new(client, Expect::Amqp, "h:1".to_owned());
        server.write_all(b"\x01").await.unwrap();
        let mut buf = [0; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        server.write_all(b"\x16\x03").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 2);
        // Writes pass through.
        io.write_all(b"out").await.unwrap();
        let mut got = [0; 3];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"out");
    }

    fn external(tls: Option<TlsOptions>) -> ConnectionConfig {
        let mut cfg =
            ConnectionConfig::default().with_auth_mechanisms(vec![SaslMechanism::External]);
        cfg.tls = tls;
        cfg
    }

    #[test]
    fn external_first_needs_a_client_certificate() {
        let with_cert = TlsOptions::default().with_client_cert("c.pem", "k.pem");
        assert!(check_external(&external(Some(with_cert))).is_ok());
        for cfg in [
            external(None),
            external(Some(TlsOptions::default())),
            external(Some(TlsOptions::default().with_server_name("x"))),
        ] {
            let e = check_external(&cfg).unwrap_err();
            assert!(
                matches!(&e, Error::Config(m) if m.contains("EXTERNAL")),
                "{e}"
            );
        }
        // EXTERNAL as a fallback, or not at all, is left to the broker.
        let fallback = ConnectionConfig::default()
            .with_auth_mechanisms(vec![SaslMechanism::Plain, SaslMechanism::External]);
        assert!(check_external(&fallback).is_ok());
        assert!(check_external(&ConnectionConfig::default()).is_ok());
    }

    fn ready_config() -> ClientConfig {
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth()
    }

    #[test]
    fn a_ready_config_is_used_as_is_and_excludes_file_settings() {
        let ready = TlsClientConfig::new(ready_config());
        let opts = TlsOptions::default().with_client_config(ready.clone());
        assert!(Arc::ptr_eq(&client_config(&opts).unwrap(), ready.get()));
        assert_eq!(opts.client_config, Some(ready.clone()));
        assert_ne!(
            Some(ready.clone()),
            Some(TlsClientConfig::new(ready_config()))
        );
        // It has no client certificate, so EXTERNAL is refused early.
        assert!(check_external(&external(Some(opts))).is_err());
        for conflicting in [
            TlsOptions::default().with_ca_cert_file("ca.pem"),
            TlsOptions::default().with_client_cert("c.pem", "k.pem"),
            TlsOptions::default().with_verify(TlsVerify::VerifyNone),
        ] {
            let e = client_config(&conflicting.with_client_config(ready.clone())).unwrap_err();
            assert!(
                matches!(&e, Error::Config(m) if m.contains("replaces")),
                "{e}"
            );
        }
    }

    #[test]
    fn key_without_certificate_and_the_reverse_are_refused() {
        let opts = TlsOptions {
            key_file: Some("k.pem".into()),
            ..TlsOptions::default()
        };
        let e = client_config(&opts).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("certfile is not")),
            "{e}"
        );
        let opts = TlsOptions {
            cert_file: Some("c.pem".into()),
            ..TlsOptions::default()
        };
        let e = client_config(&opts).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("keyfile is not")),
            "{e}"
        );
    }

    #[test]
    fn tls_errors_are_found_inside_client_errors() {
        let e = Error::io(TlsError::new(TlsErrorKind::Expired, "h:1", "expired").into_io());
        let tls = TlsError::from_error(&e).unwrap();
        assert_eq!(tls.kind(), TlsErrorKind::Expired);
        assert_eq!(tls.server(), "h:1");
        assert!(matches!(e, Error::Tls(_)), "{e:?}");
        assert_eq!(e.to_string(), "TLS with h:1: expired");
        assert!(TlsError::from_error(&Error::io(io::ErrorKind::Other.into())).is_none());
        assert!(TlsError::from_error(&Error::Config("x".into())).is_none());
    }

    #[test]
    fn ipv6_peers_are_bracketed() {
        assert_eq!(peer_name("::1", 5671), "[::1]:5671");
        assert_eq!(peer_name("localhost", 5671), "localhost:5671");
    }
}
