//! TLS to PostgreSQL, with libpq's `sslmode` meanings (rustls, ring provider):
//!
//! | `sslmode` | encrypts | checks the certificate chain | checks the host name |
//! |---|---|---|---|
//! | `disable` | no | | |
//! | `prefer` (default) | if the server offers TLS | no | no |
//! | `require` | yes | only with `sslrootcert` (as libpq) | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! The chain is checked against `sslrootcert` (a PEM file), else the system's roots.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::tls::{provider, roots};

/// `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, unverified.
    Prefer,
    /// TLS, the chain verified only when a root certificate is given.
    Require,
    /// TLS, the chain verified.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    /// The mode `value` names (libpq's names; `ssl=true` is `require`).
    pub fn parse(value: &str) -> Option<SslMode> {
        Some(match value.to_ascii_lowercase().as_str() {
            "disable" | "false" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" | "true" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// What tokio-postgres negotiates for this mode.
    pub(crate) fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// The TLS connector for `mode`, or `None` for `disable`. Fails (with a message for the
/// user) when the root certificate cannot be read.
pub(crate) fn connector(
    mode: SslMode,
    root_cert: Option<&str>,
) -> Result<Option<MakeRustlsConnect>, String> {
    let verify_chain = match mode {
        SslMode::Disable => return Ok(None),
        SslMode::Prefer => false,
        SslMode::Require => root_cert.is_some(),
        SslMode::VerifyCa | SslMode::VerifyFull => true,
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let algorithms = provider.signature_verification_algorithms;
    let chain = if verify_chain {
        Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root_cert).map_err(|e| format!("sslrootcert {e}"))?),
                provider,
            )
            .build()
            .map_err(|e| format!("TLS setup failed: {e}"))?,
        )
    } else {
        None
    };
    let verifier = Arc::new(Verifier {
        chain,
        host_name: mode == SslMode::VerifyFull,
        algorithms,
    });
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// Checks the server's certificate as the mode says: the chain (when `chain` is set)
/// and the host name (when `host_name` is also set; `verify-ca` skips it). Without a
/// chain check it encrypts without knowing who answers (`prefer`, and `require` without
/// a root certificate, as libpq does). The handshake signatures are always checked.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    host_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.host_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
