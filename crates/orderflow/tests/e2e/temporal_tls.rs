//! Temporal over mutual TLS, configured the standard way (`TEMPORAL_ADDRESS`,
//! `TEMPORAL_TLS_*`), as against Temporal Cloud or a self-hosted cluster with TLS. The dev
//! server speaks plain gRPC, so a TLS-terminating proxy on loopback stands in front of it: it
//! presents a certificate for `localhost` signed by a test CA, asks for a client certificate
//! signed by the same CA, and forwards what it decrypts to the dev server.

use crate::support::{TestApp, readme_order};
use orderflow::config::{SimulationConfig, TemporalConfig};
use orderflow::temporal::connection_options as temporal_connection;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use temporalio_client::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

#[tokio::test]
async fn a_worker_configured_with_temporal_tls_variables_connects_over_mutual_tls() {
    let pki = TestPki::generate();
    let proxy = TlsProxy::start(&pki).await;
    let app = TestApp::spawn_without_worker(SimulationConfig::default()).await;

    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("client.pem"), pki.path("client.key"));
    let address = format!("localhost:{}", proxy.port);
    let mut worker = app.worker_process(&[
        ("TEMPORAL_ADDRESS", address.as_str()),
        ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", ca.as_str()),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", cert.as_str()),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", key.as_str()),
    ]);
    let id = app.place(&readme_order()).await;
    app.wait_for_status(id, "completed").await;
    assert!(
        proxy.verified.load(Ordering::SeqCst) >= 1,
        "the worker's connections did not go through the TLS proxy with its certificate"
    );
    assert!(worker.exited_within(Duration::ZERO).await.is_none(), "{}", worker.log());
    worker.terminate();
}

#[tokio::test]
async fn without_its_client_certificate_or_the_servers_ca_the_connection_is_refused() {
    let pki = TestPki::generate();
    let proxy = TlsProxy::start(&pki).await;
    let address = format!("localhost:{}", proxy.port);
    let config = TemporalConfig {
        temporal_host: None,
        temporal_port: None,
        namespace: None,
        task_queue: "unused".into(),
        api_key: None,
    };
    let connect = |variables: &[(&str, &str)]| {
        let environment: HashMap<String, String> =
            variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (options, _) = temporal_connection(&config, Some(&environment)).expect("options");
        async move { tokio::time::timeout(Duration::from_secs(10), Connection::connect(options)).await }
    };
    let ca = pki.path("ca.pem");
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));

    let with_everything = connect(&[
        ("TEMPORAL_ADDRESS", &address),
        ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", &ca),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", &cert),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", &key),
    ]);
    assert!(matches!(with_everything.await, Ok(Ok(_))), "the complete configuration connects");

    let no_client_certificate =
        connect(&[("TEMPORAL_ADDRESS", &address), ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", &ca)]);
    assert!(!matches!(no_client_certificate.await, Ok(Ok(_))), "connected without a certificate");

    // The system's roots do not know the test CA.
    let unknown_server = connect(&[
        ("TEMPORAL_ADDRESS", &address),
        ("TEMPORAL_TLS", "true"),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", &cert),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", &key),
    ]);
    assert!(!matches!(unknown_server.await, Ok(Ok(_))), "trusted a server signed by an unknown CA");
}

#[test]
fn an_api_key_turns_tls_on_and_the_seed_variables_still_give_the_address() {
    let config = |host: Option<&str>| TemporalConfig {
        temporal_host: host.map(str::to_owned),
        temporal_port: None,
        namespace: None,
        task_queue: "unused".into(),
        api_key: None,
    };
    let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let cloud = env(&[
        ("TEMPORAL_ADDRESS", "my-ns.a1b2c.tmprl.cloud:7233"),
        ("TEMPORAL_NAMESPACE", "my-ns.a1b2c"),
        ("TEMPORAL_API_KEY", "secret-key"),
    ]);
    let (options, namespace) = temporal_connection(&config(None), Some(&cloud)).unwrap();
    assert_eq!(options.target.as_str(), "https://my-ns.a1b2c.tmprl.cloud:7233/");
    assert!(options.tls_options.is_some(), "an API key implies TLS");
    assert_eq!(options.api_key.as_deref(), Some("secret-key"));
    assert_eq!(namespace, "my-ns.a1b2c");

    let (seed, namespace) =
        temporal_connection(&config(Some("temporal")), Some(&env(&[]))).unwrap();
    assert_eq!(seed.target.as_str(), "http://temporal:7233/");
    assert!(seed.tls_options.is_none());
    assert_eq!(namespace, "default");

    let both = env(&[("TEMPORAL_ADDRESS", "elsewhere:7233")]);
    let refused = temporal_connection(&config(Some("temporal")), Some(&both)).unwrap_err();
    assert!(refused.to_string().contains("both set"), "{refused}");
}

/// A test CA, a server certificate for `localhost` and a client certificate, as PEM files.
struct TestPki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, Vec<u8>),
}

impl TestPki {
    fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!("orderflow-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "OrderFlow test CA");
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            (params.signed_by(&key, &ca, &ca_key).unwrap(), key)
        };
        let (server, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        let (client, client_key) = leaf("orderflow-worker", ExtendedKeyUsagePurpose::ClientAuth);
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        write("ca.pem", ca.pem());
        write("client.pem", client.pem());
        write("client.key", client_key.serialize_pem());
        Self {
            dir,
            ca: ca.der().clone(),
            server: (server.der().clone(), server_key.serialize_der()),
        }
    }

    fn path(&self, name: &str) -> String {
        Path::new(&self.dir).join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Terminates mutual TLS on a free loopback port and forwards to the dev server.
struct TlsProxy {
    port: u16,
    /// Connections whose client presented a certificate the CA signed.
    verified: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    async fn start(pki: &TestPki) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let clients =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server.1.clone()));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(clients)
            .with_single_cert(vec![pki.server.0.clone()], key)
            .unwrap();
        // gRPC is HTTP/2, which a TLS client negotiates by ALPN.
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = format!(
            "{}:{}",
            std::env::var("TEMPORAL_HOST").unwrap_or_else(|_| "localhost".into()),
            std::env::var("TEMPORAL_PORT").unwrap_or_else(|_| "7233".into())
        );
        let verified = Arc::new(AtomicUsize::new(0));
        let counter = verified.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, upstream, counter) =
                    (acceptor.clone(), upstream.clone(), counter.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else { return };
                    if tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()) {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                    }
                });
            }
        });
        Self { port, verified, task }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
