//! The HTTP proxy actor: CreateHttpCommonRequest. Sends the app's request with the IAM token
//! of its audience attached (the controller fetches the token through the token-exchange actor
//! first) and answers the server's status, headers and body.
//!
//! A DPoP-bound IAM token goes out as `Authorization: DPoP` with a fresh proof from the device
//! key; a resource that answers with a DPoP nonce challenge gets the call once more with a new
//! proof carrying its nonce (never more: a second challenge is the answer).
//!
//! Transport failures are reported in `status` (serverNotReachable, timeout,
//! sslHandshakeFailed, failed); any answer of the server, 4xx and 5xx included, is `success`
//! with its `httpStatus`. Bodies are read up to a limit and never buffered beyond it.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use mc_events::{
    error_code, CreateHttpCommonRequest, CreateHttpCommonResultEvent, HttpCommonStatus, HttpMethod,
    ResultInfo,
};
use mc_jose::SigningKey;
use mc_oidc::{OidcClient, ResourceAuthorization, TokenSet};
use mc_secret::SecretString;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

pub struct HttpProxyActor {
    follow: reqwest::Client,
    no_follow: reqwest::Client,
    max_body: usize,
    default_timeout: Duration,
}

impl HttpProxyActor {
    pub fn new(max_body: usize, default_timeout: Duration) -> Result<Self, String> {
        Ok(Self {
            follow: client(None, reqwest::redirect::Policy::limited(10))?,
            no_follow: client(None, reqwest::redirect::Policy::none())?,
            max_body,
            default_timeout,
        })
    }
}

/// A client on rustls with the ring provider; with `pinned` roots, only those are trusted.
fn client(
    pinned: Option<rustls::RootCertStore>,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, String> {
    let tls = match pinned {
        Some(roots) => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            config
        }
        None => mc_oidc::tls_client_config().map_err(|e| e.to_string())?,
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(redirects)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

impl Actor for HttpProxyActor {
    type Context = Context<Self>;
}

/// Send `request`, authorised with the IAM token of its audience when it named one.
#[derive(Message)]
#[rtype(result = "CreateHttpCommonResultEvent")]
pub struct HttpCall {
    pub request: CreateHttpCommonRequest,
    pub auth: Option<ResourceAuth>,
}

/// The IAM token of a call and what makes a new proof for a retry.
pub struct ResourceAuth {
    pub oidc: OidcClient,
    pub token: TokenSet,
    /// The device key: DPoP proofs are signed with it.
    pub key: Arc<SigningKey>,
    /// The headers of the first attempt (the controller builds them, to report a bad URL
    /// before anything is sent).
    pub first: ResourceAuthorization,
}

impl Handler<HttpCall> for HttpProxyActor {
    type Result = ResponseFuture<CreateHttpCommonResultEvent>;

    fn handle(&mut self, msg: HttpCall, _: &mut Self::Context) -> Self::Result {
        let max_body = self.max_body;
        let timeout = msg
            .request
            .timeout
            .map(Duration::from_millis)
            .unwrap_or(self.default_timeout);
        let client = match msg.request.certificate_chain.as_deref() {
            None if msg.request.follow_redirect => Ok(self.follow.clone()),
            None => Ok(self.no_follow.clone()),
            Some(pem) => pinned_client(pem, msg.request.follow_redirect),
        };
        Box::pin(async move {
            let client = match client {
                Ok(client) => client,
                Err(failure) => return *failure,
            };
            send(client, msg, timeout, max_body).await
        })
    }
}

fn failed(
    status: HttpCommonStatus,
    code: u32,
    description: impl Into<String>,
) -> CreateHttpCommonResultEvent {
    let mut result = CreateHttpCommonResultEvent::from_info(ResultInfo::error(
        status.to_status_type(),
        code,
        description,
    ));
    result.status = status;
    result
}

fn pinned_client(
    pem: &str,
    follow: bool,
) -> Result<reqwest::Client, Box<CreateHttpCommonResultEvent>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let invalid = |what: String| {
        Box::new(failed(
            HttpCommonStatus::Failed,
            error_code::INVALID_PARAMETER,
            format!("field `certificateChain`: {what}; give the PEM certificates to trust"),
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| invalid(format!("not PEM ({e:?})")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("unusable certificate ({e})")))?;
    }
    if roots.is_empty() {
        return Err(invalid("no certificate found".into()));
    }
    let policy = if follow {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    client(Some(roots), policy).map_err(|e| {
        Box::new(failed(
            HttpCommonStatus::Failed,
            error_code::INTERNAL_ERROR,
            e,
        ))
    })
}

/// `Authorization` (and `DPoP`) headers, marked sensitive so they are never logged.
fn add_authorization(
    headers: &mut HeaderMap,
    authorization: &ResourceAuthorization,
) -> Result<(), Box<CreateHttpCommonResultEvent>> {
    let sensitive = |secret: &SecretString| {
        HeaderValue::from_str(secret.expose())
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            .map_err(|_| {
                Box::new(failed(
                    HttpCommonStatus::Failed,
                    error_code::INVALID_TOKEN,
                    "the IAM token cannot be sent in a header; exchange it again",
                ))
            })
    };
    headers.insert(AUTHORIZATION, sensitive(&authorization.authorization)?);
    if let Some(proof) = &authorization.dpop {
        headers.insert(HeaderName::from_static("dpop"), sensitive(proof)?);
    }
    Ok(())
}

async fn send(
    client: reqwest::Client,
    msg: HttpCall,
    timeout: Duration,
    max_body: usize,
) -> CreateHttpCommonResultEvent {
    let request = &msg.request;
    let url = match reqwest::Url::parse(&request.full_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => {
            return failed(
                HttpCommonStatus::Failed,
                error_code::INVALID_PARAMETER,
                "field `fullUrl`: not an absolute http(s) URL",
            )
        }
    };
    let method = match request.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Delete => reqwest::Method::DELETE,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Head => reqwest::Method::HEAD,
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &request.http_headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.insert(name, value);
            }
            _ => {
                return failed(
                    HttpCommonStatus::Failed,
                    error_code::INVALID_PARAMETER,
                    format!(
                        "field `httpHeaders`: header `{}` is not a valid HTTP header",
                        name.chars().take(64).collect::<String>()
                    ),
                )
            }
        }
    }
    if let Some(content_type) = &request.content_type {
        match HeaderValue::from_str(content_type) {
            Ok(value) => {
                headers.insert(CONTENT_TYPE, value);
            }
            Err(_) => {
                return failed(
                    HttpCommonStatus::Failed,
                    error_code::INVALID_PARAMETER,
                    "field `contentType`: not a valid header value",
                )
            }
        }
    }
    let method_name = method.as_str().to_string();
    let mut authorization = msg.auth.as_ref().map(|auth| auth.first.clone());
    let mut nonce_retried = false;
    let mut response = loop {
        let mut headers = headers.clone();
        if let Some(authorization) = &authorization {
            if let Err(failure) = add_authorization(&mut headers, authorization) {
                return *failure;
            }
        }
        let mut builder = client
            .request(method.clone(), url.clone())
            .headers(headers)
            .timeout(timeout);
        if let Some(content) = &request.content {
            builder = builder.body(content.clone());
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let Some(auth) = &msg.auth else {
            break response;
        };
        let challenged = auth.oidc.observe_resource_answer(
            url.as_str(),
            response.status().as_u16(),
            response.headers(),
        );
        if !challenged || nonce_retried {
            break response;
        }
        nonce_retried = true;
        tracing::debug!("the resource asked for a DPoP nonce; sending once more");
        match auth
            .oidc
            .resource_authorization(&auth.token, &auth.key, &method_name, url.as_str())
        {
            Ok(fresh) => authorization = Some(fresh),
            Err(_) => break response,
        }
    };
    let http_status = response.status().as_u16();
    let response_headers: BTreeMap<String, String> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_body {
                    return failed(
                        HttpCommonStatus::Failed,
                        error_code::INVALID_RESPONSE,
                        format!(
                            "the response body exceeds {max_body} bytes; ask the server for less"
                        ),
                    );
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(error) => return transport_failure(&error),
        }
    }
    let mut result = CreateHttpCommonResultEvent::from_info(ResultInfo::ok());
    result.status = HttpCommonStatus::Success;
    result.http_status = Some(http_status);
    result.response = body;
    result.response_headers = response_headers;
    result
}

fn transport_failure(error: &reqwest::Error) -> CreateHttpCommonResultEvent {
    if error.is_timeout() {
        return failed(
            HttpCommonStatus::Timeout,
            error_code::SERVER_TIMEOUT,
            "the server did not answer in time; retry or raise `timeout`",
        );
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return failed(
                HttpCommonStatus::SslHandshakeFailed,
                error_code::TLS_FAILED,
                format!(
                    "TLS handshake failed ({tls}); check the certificate or `certificateChain`"
                ),
            );
        }
        source = cause.source();
    }
    if error.is_connect() {
        return failed(
            HttpCommonStatus::ServerNotReachable,
            error_code::SERVER_NOT_REACHABLE,
            "the server is not reachable; check the URL and the network, then retry",
        );
    }
    let what = if error.is_redirect() {
        "too many redirects"
    } else if error.is_body() || error.is_decode() {
        "the response body could not be read"
    } else {
        "the request could not be sent"
    };
    failed(
        HttpCommonStatus::Failed,
        error_code::SERVER_NOT_REACHABLE,
        format!("{what}; check the URL and the server, then retry"),
    )
}
