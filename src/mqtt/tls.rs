// SPDX-License-Identifier: MPL-2.0
//! TLS for the broker connection (rustls with the ring provider): the broker is checked against
//! the certificate authorities of one PEM file; a client certificate and key are optional.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate files (PEM).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate authorities the broker's certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate chain and key, both or neither.
    pub client: Option<(PathBuf, PathBuf)>,
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the {what} file {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// The client configuration, or an error naming the file or setting that is wrong.
pub fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates("tls-ca", &files.ca)? {
        roots
            .add(cert)
            .map_err(|e| format!("the tls-ca file {}: {e}", files.ca.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS set-up: {e}"))?
    .with_root_certificates(roots);
    let config = match &files.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates("tls-cert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!(
                    "cannot read a private key from the tls-key file {}: {e}",
                    key.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("tls-cert and tls-key do not make a client identity: {e}"))?
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_files_are_named() {
        let missing = TlsFiles {
            ca: "/nonexistent/ca.pem".into(),
            client: None,
        };
        let e = client_config(&missing).unwrap_err();
        assert!(
            e.contains("tls-ca") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let empty =
            std::env::temp_dir().join(format!("facepose-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(&TlsFiles {
            ca: empty.clone(),
            client: None,
        })
        .unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_file(empty);
    }
}
