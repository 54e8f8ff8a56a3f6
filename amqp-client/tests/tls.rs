//! `amqps://` against the test broker's TLS listener, and against scripted TLS servers on
//! loopback for the certificates the broker does not have (expired, self-signed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use amqp_client::options::{ConsumeOptions, QueueDeclareOptions};
use amqp_client::rustls::pki_types::pem::PemObject;
use amqp_client::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use amqp_client::rustls::{ClientConfig, RootCertStore, ServerConfig};
use amqp_client::uri::AmqpUri;
use amqp_client::*;
use amqp_test_support::{amqps_url, broker_addr, broker_dir, required_env, unique_name};
use futures_util::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

// ----- helpers ---------------------------------------------------------------------------------

fn certs() -> PathBuf {
    broker_dir().join("certs")
}

fn ca_file() -> PathBuf {
    certs().join("ca.pem")
}

/// The TLS listener's URI with `userinfo` (`user:pass@` or nothing) and `query` in place of
/// the test broker's own.
fn amqps_uri(userinfo: &str, query: &str) -> String {
    let uri = AmqpUri::parse(&amqps_url()).unwrap();
    format!("amqps://{userinfo}{}:{}/%2f?{query}", uri.host, uri.port)
}

fn amqps_port() -> u16 {
    AmqpUri::parse(&amqps_url()).unwrap().port
}

fn ca_query() -> String {
    format!("cacertfile={}", ca_file().display())
}

fn client_cert_query() -> String {
    format!(
        "certfile={}&keyfile={}",
        certs().join("client.pem").display(),
        certs().join("client_key.pem").display()
    )
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(prefix: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("{}.pem", unique_name(prefix)));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(contents))
            .unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The TLS error inside `e`, failing the test with the whole error if there is none.
fn tls_error(e: &Error) -> &TlsError {
    TlsError::from_error(e).unwrap_or_else(|| panic!("not a TLS error: {e:?}"))
}

async fn connect_err(uri: &str) -> Error {
    match Connection::connect(uri).await {
        Ok(_) => panic!("{uri} connected"),
        Err(e) => e,
    }
}

fn new_ca(name: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params, key)
}

/// Publishes one message on a fresh queue and consumes it back.
async fn round_trip(conn: &Connection, properties: &BasicProperties) -> Delivery {
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let queue = ch
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let confirm = ch
        .publish(
            amqp_client::Publish::to_queue(&queue.name),
            properties,
            b"over tls",
        )
        .await
        .unwrap();
    assert!(confirm.await.unwrap().is_ack());
    let mut consumer = ch
        .basic_consume(&queue.name, ConsumeOptions::default())
        .await
        .unwrap();
    let delivery = consumer.next().await.unwrap().unwrap();
    assert_eq!(&delivery.body[..], b"over tls");
    delivery
}

/// A TLS server on loopback presenting `cert` (signed by `key`'s certificate chain) to one
/// client. It answers with the first 8 octets the client sends after the handshake, or with
/// the handshake's error.
async fn scripted_tls_server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> (u16, tokio::task::JoinHandle<std::io::Result<Vec<u8>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let mut first = vec![0; 8];
        tls.read_exact(&mut first).await?;
        Ok(first)
    });
    (port, task)
}

fn leaf_params(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> CertificateParams {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    params
}

fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::try_from(key.serialize_der()).unwrap()
}

/// Collects what `tracing` writes while the guard lives.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// ----- the happy paths -------------------------------------------------------------------------

#[tokio::test]
async fn amqps_with_the_test_ca_publishes_and_consumes() {
    let conn = Connection::connect(&amqps_url()).await.unwrap();
    assert_eq!(
        conn.server_properties().get_str("product"),
        Some("RabbitMQ")
    );
    round_trip(&conn, &BasicProperties::default()).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn an_ip_address_is_checked_against_the_certificates_ip_entries() {
    // The server certificate lists 127.0.0.1 as an IP address SAN.
    let port = amqps_port();
    let uri = format!("amqps://guest:guest@127.0.0.1:{port}/%2f?{}", ca_query());
    let conn = Connection::connect(&uri).await.unwrap();
    round_trip(&conn, &BasicProperties::default()).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn server_name_indication_overrides_the_name_checked() {
    let port = amqps_port();
    let uri = format!(
        "amqps://guest:guest@127.0.0.1:{port}/%2f?{}&server_name_indication=localhost",
        ca_query()
    );
    let conn = Connection::connect(&uri).await.unwrap();
    assert!(conn.is_open());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_with_external_logs_in_as_the_certificate_user() {
    let tls_user = required_env("BROKER_TLS_USER");
    // No user name or password in the URI: the broker takes the user from the certificate.
    let uri = format!(
        "{}&{}&auth_mechanism=external",
        amqps_uri("", &ca_query()),
        client_cert_query()
    );
    let conn = Connection::connect(&uri).await.unwrap();
    // RabbitMQ refuses a message whose user_id is not the connection's user, so this
    // round trip proves who we are logged in as.
    let as_cert_user = BasicProperties::default()
        .with_user_id(tls_user.as_str())
        .unwrap();
    let delivery = round_trip(&conn, &as_cert_user).await;
    assert_eq!(
        delivery.properties().user_id.as_deref(),
        Some(tls_user.as_str())
    );

    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let as_guest = BasicProperties::default().with_user_id("guest").unwrap();
    let confirm = ch
        .publish(amqp_client::Publish::to_queue("nowhere"), &as_guest, b"x")
        .await
        .unwrap();
    let e = confirm.await.unwrap_err();
    assert_eq!(e.reply_code(), Some(ReplyCode::PRECONDITION_FAILED), "{e}");
    assert!(e.to_string().contains(&tls_user), "{e}");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_ready_rustls_config_is_used_as_given() {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(certs().join("client.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(certs().join("client_key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let cfg = ConnectionConfig::from_uri(&amqps_uri("guest:guest@", ""))
        .unwrap()
        .with_auth_mechanisms(vec![SaslMechanism::External])
        .with_tls(TlsOptions::default().with_client_config(config.clone()));
    let conn = Connection::connect_with(cfg).await.unwrap();
    round_trip(&conn, &BasicProperties::default()).await;
    conn.close().await.unwrap();

    // A ready configuration and file settings together are ambiguous.
    let cfg = ConnectionConfig::from_uri(&amqps_uri("guest:guest@", ""))
        .unwrap()
        .with_tls(
            TlsOptions::default()
                .with_ca_cert_file(ca_file())
                .with_client_config(config),
        );
    let e = Connection::connect_with(cfg).await.unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("cacertfile")),
        "{e}"
    );
}

// ----- the server's certificate is refused -----------------------------------------------------

#[tokio::test]
async fn the_bundled_roots_do_not_trust_the_test_ca() {
    let e = connect_err(&amqps_uri("guest:guest@", "")).await;
    let tls = tls_error(&e);
    assert_eq!(tls.kind(), TlsErrorKind::UnknownIssuer, "{e}");
    assert!(e.to_string().contains("Mozilla"), "{e}");
}

#[tokio::test]
async fn a_wrong_ca_is_a_certificate_error() {
    let (params, key) = new_ca("some other CA");
    let other_ca = params.self_signed(&key).unwrap();
    let file = TempFile::new("wrong-ca", other_ca.pem().as_bytes());
    let e = connect_err(&amqps_uri(
        "guest:guest@",
        &format!("cacertfile={}", file.path().display()),
    ))
    .await;
    let tls = tls_error(&e);
    assert_eq!(tls.kind(), TlsErrorKind::UnknownIssuer, "{e}");
    let text = e.to_string();
    assert!(text.contains("not signed by a trusted CA"), "{text}");
    assert!(text.contains(&file.path().display().to_string()), "{text}");
    assert!(e.is_connection_error());
}

#[tokio::test]
async fn a_wrong_host_name_is_a_host_name_error() {
    let e = connect_err(&amqps_uri(
        "guest:guest@",
        &format!("{}&server_name_indication=wrong.prisem.invalid", ca_query()),
    ))
    .await;
    let tls = tls_error(&e);
    assert_eq!(tls.kind(), TlsErrorKind::NameMismatch, "{e}");
    let text = e.to_string();
    assert!(text.contains("wrong.prisem.invalid"), "{text}");
    // rustls lists the names the certificate is valid for.
    assert!(text.contains("localhost"), "{text}");
}

#[tokio::test]
async fn an_expired_server_certificate_is_refused_before_any_amqp_byte() {
    let (ca_params, ca_key) = new_ca("scripted CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let ca_file = TempFile::new("scripted-ca", ca.pem().as_bytes());
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params((2020, 1, 1), (2021, 1, 1))
        .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let (port, server) = scripted_tls_server(vec![cert.der().clone()], key_der(&key)).await;

    let uri = format!(
        "amqps://guest:guest@localhost:{port}/%2f?cacertfile={}",
        ca_file.path().display()
    );
    let e = connect_err(&uri).await;
    let tls = tls_error(&e);
    assert_eq!(tls.kind(), TlsErrorKind::Expired, "{e}");
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(tls.server(), format!("localhost:{port}"));
    // The server never got past the handshake, so no AMQP octet reached it.
    assert!(server.await.unwrap().is_err());
}

#[tokio::test]
async fn a_self_signed_server_certificate_is_refused_before_any_amqp_byte() {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params((2020, 1, 1), (2099, 1, 1))
        .self_signed(&key)
        .unwrap();
    let (port, server) = scripted_tls_server(vec![cert.der().clone()], key_der(&key)).await;

    let uri = format!("amqps://guest:guest@localhost:{port}/%2f?{}", ca_query());
    let e = connect_err(&uri).await;
    let tls = tls_error(&e);
    assert_eq!(tls.kind(), TlsErrorKind::SelfSigned, "{e}");
    assert!(e.to_string().contains("self-signed"), "{e}");
    assert!(server.await.unwrap().is_err());
}

/// Both `verify_none` connections of this file are in this one test, so that no other
/// thread races it to the warning's callsite while its log subscriber is being installed.
#[tokio::test]
async fn verify_none_accepts_any_certificate_and_warns_each_time() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    // The broker, with no CA given (the bundled roots would refuse its certificate).
    let conn = Connection::connect(&amqps_uri("guest:guest@", "verify=verify_none"))
        .await
        .unwrap();
    round_trip(&conn, &BasicProperties::default()).await;
    conn.close().await.unwrap();

    // A server with an expired, self-signed certificate for another name. It hangs up after
    // the protocol header, so the login fails, but only after the certificate was accepted
    // and AMQP spoken over TLS.
    let key = KeyPair::generate().unwrap();
    let mut params = leaf_params((2020, 1, 1), (2021, 1, 1));
    params.subject_alt_names = vec![rcgen::SanType::DnsName(
        "elsewhere.invalid".try_into().unwrap(),
    )];
    let cert = params.self_signed(&key).unwrap();
    let (port, server) = scripted_tls_server(vec![cert.der().clone()], key_der(&key)).await;
    let uri = format!("amqps://guest:guest@localhost:{port}/%2f?verify=verify_none");
    let e = connect_err(&uri).await;
    assert!(TlsError::from_error(&e).is_none(), "{e}");
    assert_eq!(&server.await.unwrap().unwrap(), b"AMQP\x00\x00\x09\x01");

    let logged = captured.text();
    let warnings: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("verify_none"))
        .collect();
    assert_eq!(
        warnings.len(),
        2,
        "expected one warning per connection: {logged}"
    );
    assert!(
        warnings[0].contains(&format!(":{}", amqps_port())),
        "{logged}"
    );
    assert!(
        warnings[1].contains(&format!("localhost:{port}")),
        "{logged}"
    );
}

// ----- SASL EXTERNAL without a certificate -----------------------------------------------------

#[tokio::test]
async fn external_without_a_client_certificate_fails_before_connecting() {
    let uri = amqps_uri(
        "guest:guest@",
        &format!("{}&auth_mechanism=external", ca_query()),
    );
    let e = connect_err(&uri).await;
    assert!(
        matches!(&e, Error::Config(m) if m.contains("EXTERNAL") && m.contains("certfile")),
        "{e}"
    );
    let (host, port) = broker_addr();
    let plain = format!("amqp://{host}:{port}/%2f?auth_mechanism=external");
    let e = connect_err(&plain).await;
    assert!(
        matches!(&e, Error::Config(m) if m.contains("EXTERNAL") && m.contains("amqps://")),
        "{e}"
    );
}

#[tokio::test]
async fn external_over_tls_without_a_client_certificate_is_refused_at_login() {
    // A transport set up by hand skips the early check, so this is the broker's own answer.
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("localhost", amqps_port()))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let cfg = ConnectionConfig::default().with_auth_mechanisms(vec![SaslMechanism::External]);
    let e = match Connection::open_with(tls, cfg).await {
        Ok(_) => panic!("EXTERNAL without a certificate logged in"),
        Err(e) => e,
    };
    assert!(
        matches!(&e, Error::Authentication(msg) if msg.contains("ACCESS_REFUSED")),
        "{e:?}"
    );
    assert!(e.to_string().contains("EXTERNAL"), "{e}");
}

// ----- files -----------------------------------------------------------------------------------

#[tokio::test]
async fn missing_and_unusable_files_are_configuration_errors() {
    let missing = std::env::temp_dir().join(unique_name("missing-ca"));
    let e = connect_err(&amqps_uri(
        "guest:guest@",
        &format!("cacertfile={}", missing.display()),
    ))
    .await;
    assert!(
        matches!(&e, Error::Config(m) if m.contains("CA file") && m.contains(&missing.display().to_string()) && m.contains("cannot read")),
        "{e}"
    );

    let not_pem = TempFile::new("not-pem", b"hello, this is no certificate\n");
    let e = connect_err(&amqps_uri(
        "guest:guest@",
        &format!("cacertfile={}", not_pem.path().display()),
    ))
    .await;
    assert!(
        matches!(&e, Error::Config(m) if m.contains("no PEM certificate")),
        "{e}"
    );

    let e = connect_err(&amqps_uri(
        "guest:guest@",
        &format!(
            "{}&certfile={}&keyfile={}",
            ca_query(),
            certs().join("client.pem").display(),
            not_pem.path().display()
        ),
    ))
    .await;
    assert!(
        matches!(&e, Error::Config(m) if m.contains("no PEM private key")),
        "{e}"
    );

    let e = connect_err(&amqps_uri(
        "guest:guest@",
        &format!(
            "{}&certfile={}",
            ca_query(),
            certs().join("client.pem").display()
        ),
    ))
    .await;
    assert!(
        matches!(&e, Error::Config(m) if m.contains("keyfile")),
        "{e}"
    );

    // A key that does not belong to the certificate.
    let stranger = TempFile::new(
        "stranger-key",
        KeyPair::generate().unwrap().serialize_pem().as_bytes(),
    );
    let e = connect_err(&amqps_uri(
        "guest:guest@",
        &format!(
            "{}&certfile={}&keyfile={}",
            ca_query(),
            certs().join("client.pem").display(),
            stranger.path().display()
        ),
    ))
    .await;
    assert!(
        matches!(&e, Error::Config(m) if m.contains("client certificate")),
        "{e}"
    );
}

// ----- the wrong port --------------------------------------------------------------------------

#[tokio::test]
async fn plain_amqp_to_the_tls_port_fails_clearly() {
    let uri = AmqpUri::parse(&amqps_url()).unwrap();
    let e = connect_err(&format!("amqp://guest:guest@{}:{}/%2f", uri.host, uri.port)).await;
    let tls = tls_error(&e);
    assert_eq!(tls.kind(), TlsErrorKind::ServerWantsTls, "{e}");
    assert!(
        matches!(e, Error::Tls(_)),
        "a TLS failure is Error::Tls: {e:?}"
    );
    assert!(e.to_string().contains("amqps://"), "{e}");
}

#[tokio::test]
async fn amqps_to_the_plain_port_fails_clearly() {
    let (host, port) = broker_addr();
    let e = connect_err(&format!(
        "amqps://guest:guest@{host}:{port}/%2f?{}",
        ca_query()
    ))
    .await;
    let tls = tls_error(&e);
    assert_eq!(tls.kind(), TlsErrorKind::NotTls, "{e}");
    assert!(e.to_string().contains("AMQP protocol header"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_is_bounded_by_the_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds the socket open, saying nothing.
    let holder = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        drop(tcp);
    });
    let uri = format!(
        "amqps://guest:guest@localhost:{port}/%2f?{}&connection_timeout=300",
        ca_query()
    );
    let e = connect_err(&uri).await;
    assert!(matches!(e, Error::ConnectTimeout(_)), "{e:?}");
    holder.abort();
}

#[tokio::test]
async fn a_server_that_hangs_up_during_the_handshake_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let closer = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // Read the ClientHello, then hang up.
        let mut hello = [0; 5];
        tcp.read_exact(&mut hello).await.unwrap();
        hello
    });
    let e = connect_err(&format!(
        "amqps://guest:guest@localhost:{port}/%2f?{}",
        ca_query()
    ))
    .await;
    let tls = tls_error(&e);
    assert_eq!(tls.kind(), TlsErrorKind::Closed, "{e}");
    assert!(e.to_string().contains("closed the connection"), "{e}");
    // What the client sent was a TLS handshake record, not AMQP.
    assert_eq!(closer.await.unwrap()[0], 0x16);
}
