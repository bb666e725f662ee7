//! The HTTP proxy actor: CreateHttpCommonRequest. Sends the app's request, with the IAM token
//! of its audience attached when it names one (the controller checks that the URL may receive
//! that token and fetches it through the token-exchange actor first), and answers the
//! server's status, headers and body.
//!
//! The sending itself (TLS, pins, `certificateChain`, DPoP proofs and the nonce retry, the
//! redirect rules, the failure classes) is mc-oidc's shared HTTP layer
//! ([`mc_oidc::http`], [`OidcClient::send_resource`]); this actor only turns the request
//! event into a [`ResourceRequest`] and the outcome into the result event.
//!
//! Transport failures are reported in `status` (serverNotReachable, timeout,
//! sslHandshakeFailed, failed); any answer of the server, 4xx and 5xx included, is `success`
//! with its `httpStatus`. Bodies are read up to a limit and never buffered beyond it.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use mc_events::{
    error_code, CreateHttpCommonRequest, CreateHttpCommonResultEvent, HttpCommonStatus, HttpMethod,
    ResultInfo,
};
use mc_oidc::http::{
    http_client, RequestTrust, ResourceFailure, ResourceRequest, ResourceToken, TransportFailure,
};
use mc_oidc::OidcClient;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

pub struct HttpProxyActor {
    oidc: OidcClient,
    /// The client of requests without a `certificateChain` (shares its connection pool).
    shared: reqwest::Client,
    max_body: usize,
    default_timeout: Duration,
}

impl HttpProxyActor {
    /// Uses the trust settings (extra roots, pins) of `oidc`'s configuration.
    pub fn new(
        oidc: OidcClient,
        max_body: usize,
        default_timeout: Duration,
    ) -> Result<Self, String> {
        let config = oidc.config();
        let shared = http_client(&config.tls, None, &config.user_agent, default_timeout)?;
        Ok(Self {
            oidc,
            shared,
            max_body,
            default_timeout,
        })
    }

    fn client_for(
        &self,
        request: &CreateHttpCommonRequest,
    ) -> Result<reqwest::Client, Box<CreateHttpCommonResultEvent>> {
        let Some(pem) = request.certificate_chain.as_deref() else {
            return Ok(self.shared.clone());
        };
        let trust = RequestTrust::from_pem(pem).map_err(|what| {
            Box::new(failed(
                HttpCommonStatus::Failed,
                error_code::INVALID_PARAMETER,
                format!(
                    "field `certificateChain`: {what}; give the PEM certificates to trust or pin"
                ),
            ))
        })?;
        let config = self.oidc.config();
        http_client(
            &config.tls,
            Some(&trust),
            &config.user_agent,
            self.default_timeout,
        )
        .map_err(|e| {
            Box::new(failed(
                HttpCommonStatus::Failed,
                error_code::INTERNAL_ERROR,
                e,
            ))
        })
    }
}

impl Actor for HttpProxyActor {
    type Context = Context<Self>;
}

/// Send `request`, authorised with the IAM token of its audience when it named one.
#[derive(Message)]
#[rtype(result = "CreateHttpCommonResultEvent")]
pub struct HttpCall {
    pub request: CreateHttpCommonRequest,
    pub auth: Option<ResourceToken>,
}

impl Handler<HttpCall> for HttpProxyActor {
    type Result = ResponseFuture<CreateHttpCommonResultEvent>;

    fn handle(&mut self, msg: HttpCall, _: &mut Self::Context) -> Self::Result {
        let timeout = msg
            .request
            .timeout
            .map(Duration::from_millis)
            .unwrap_or(self.default_timeout);
        let client = self.client_for(&msg.request);
        let resource_request = resource_request(&msg.request, timeout, self.max_body);
        let oidc = self.oidc.clone();
        Box::pin(async move {
            let client = match client {
                Ok(client) => client,
                Err(failure) => return *failure,
            };
            let request = match resource_request {
                Ok(request) => request,
                Err(failure) => return *failure,
            };
            match oidc
                .send_resource(&client, request, msg.auth.as_ref())
                .await
            {
                Ok(answer) => {
                    let mut result = CreateHttpCommonResultEvent::from_info(ResultInfo::ok());
                    result.status = HttpCommonStatus::Success;
                    result.http_status = Some(answer.status);
                    result.response = answer.body;
                    result.response_headers = answer
                        .headers
                        .iter()
                        .filter_map(|(name, value)| {
                            Some((name.to_string(), value.to_str().ok()?.to_string()))
                        })
                        .collect::<BTreeMap<_, _>>();
                    result
                }
                Err(failure) => failure_result(failure, &msg.request.full_url),
            }
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

fn invalid(description: impl Into<String>) -> Box<CreateHttpCommonResultEvent> {
    Box::new(failed(
        HttpCommonStatus::Failed,
        error_code::INVALID_PARAMETER,
        description,
    ))
}

/// The app's request as the HTTP layer takes it; a bad field is an INVALID_PARAMETER.
fn resource_request(
    request: &CreateHttpCommonRequest,
    timeout: Duration,
    max_body: usize,
) -> Result<ResourceRequest, Box<CreateHttpCommonResultEvent>> {
    let url = match reqwest::Url::parse(&request.full_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => return Err(invalid("field `fullUrl`: not an absolute http(s) URL")),
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
                return Err(invalid(format!(
                    "field `httpHeaders`: header `{}` is not a valid HTTP header",
                    name.chars().take(64).collect::<String>()
                )))
            }
        }
    }
    if let Some(content_type) = &request.content_type {
        let value = HeaderValue::from_str(content_type)
            .map_err(|_| invalid("field `contentType`: not a valid header value"))?;
        headers.insert(CONTENT_TYPE, value);
    }
    Ok(ResourceRequest {
        method,
        url,
        headers,
        body: request.content.clone().map(String::into_bytes),
        timeout,
        follow_redirects: request.follow_redirect,
        max_body,
    })
}

/// The result of a call that got no usable answer. Names the origin, never the full URL.
fn failure_result(failure: ResourceFailure, full_url: &str) -> CreateHttpCommonResultEvent {
    let origin = reqwest::Url::parse(full_url)
        .map(|url| mc_oidc::http::origin_of(&url))
        .unwrap_or_default();
    match failure {
        ResourceFailure::Transport(TransportFailure::Tls(reason)) => failed(
            HttpCommonStatus::SslHandshakeFailed,
            error_code::TLS_FAILED,
            format!(
                "TLS with {origin} failed ({reason}); possibly a man in the middle: check the server certificate, `certificateChain` and the pins, do not retry blindly"
            ),
        ),
        ResourceFailure::Transport(TransportFailure::Timeout) => failed(
            HttpCommonStatus::Timeout,
            error_code::SERVER_TIMEOUT,
            "the server did not answer in time; retry or raise `timeout`",
        ),
        ResourceFailure::Transport(TransportFailure::NotReachable(reason)) => failed(
            HttpCommonStatus::ServerNotReachable,
            error_code::SERVER_NOT_REACHABLE,
            format!("{origin} is not reachable ({reason}); check the URL and the network, then retry"),
        ),
        ResourceFailure::Transport(TransportFailure::ConnectionLost(reason)) => failed(
            HttpCommonStatus::Failed,
            error_code::SERVER_NOT_REACHABLE,
            format!("the connection to {origin} broke ({reason}); check the server, then retry"),
        ),
        ResourceFailure::Transport(TransportFailure::UnreadableBody) => failed(
            HttpCommonStatus::Failed,
            error_code::INVALID_RESPONSE,
            "the response body could not be read; check the server",
        ),
        ResourceFailure::Transport(TransportFailure::Unbuildable) => failed(
            HttpCommonStatus::Failed,
            error_code::INVALID_PARAMETER,
            "the request could not be built; check `fullUrl` and `httpHeaders`",
        ),
        ResourceFailure::TooManyRedirects => failed(
            HttpCommonStatus::Failed,
            error_code::INVALID_RESPONSE,
            format!(
                "more than {} redirects; check the URL or send with `followRedirect` false",
                mc_oidc::http::MAX_REDIRECTS
            ),
        ),
        ResourceFailure::BodyTooLarge { limit } => failed(
            HttpCommonStatus::Failed,
            error_code::INVALID_RESPONSE,
            format!("the response body exceeds {limit} bytes; ask the server for less"),
        ),
        ResourceFailure::TokenNotAllowed(why) => failed(
            HttpCommonStatus::Failed,
            error_code::TOKEN_ORIGIN_NOT_ALLOWED,
            format!("{why}; nothing was sent"),
        ),
        ResourceFailure::Authorization(error) => failed(
            HttpCommonStatus::Failed,
            error_code::INVALID_TOKEN,
            format!("the IAM token cannot be attached ({error}); exchange it again"),
        ),
    }
}
