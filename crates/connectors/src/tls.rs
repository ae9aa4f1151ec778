//! TLS client settings shared by the connectors (rustls with the ring provider): the
//! root certificates to trust, and a fully verifying client configuration.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The crypto provider every connector uses (ring).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The root certificates: the PEM file `root_cert`, else the system's.
pub(crate) fn roots(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("'{path}' cannot be read: {e}"))?;
            for c in certs {
                let c = c.map_err(|e| format!("'{path}' is not PEM: {e}"))?;
                store.add(c).map_err(|e| format!("'{path}': {e}"))?;
            }
            if store.is_empty() {
                return Err(format!("'{path}' holds no certificate"));
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(c);
            }
        }
    }
    Ok(store)
}

/// A client configuration that verifies the server's chain (against `root_cert`, a PEM
/// file, else the system's roots) and host name.
pub(crate) fn verifying_config(root_cert: Option<&str>) -> Result<ClientConfig, String> {
    let roots = roots(root_cert)?;
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
