//! The HTTP proxy actor: CreateHttpCommonRequest. It owns the call: it checks that the URL
//! may receive the token of the request's audience (before any token is fetched), asks the
//! token-exchange actor for that token, waits for one of the `max_http_in_flight` slots,
//! sends the app's request and answers the server's status, headers and body.
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
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use mc_events::{
    error_code, CreateHttpCommonRequest, CreateHttpCommonResultEvent, HttpCommonStatus, HttpMethod,
    NextAction, ResultInfo, StatusType,
};
use mc_oidc::http::{
    http_client, RequestTrust, ResourceFailure, ResourceRequest, ResourceToken, TransportFailure,
};
use mc_oidc::{OidcClient, TokenSet};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::token_exchange::{Exchange, TokenExchangeActor};
use super::Admitted;
use crate::config::AudienceOrigins;
use crate::failure::Failure;
use crate::reducer::Outcome;
use crate::session::SessionSlot;

pub struct HttpProxyActor {
    oidc: OidcClient,
    /// The client of requests without a `certificateChain` (shares its connection pool).
    shared: reqwest::Client,
    max_body: usize,
    default_timeout: Duration,
    /// Where each audience's token may be sent.
    audience_origins: AudienceOrigins,
    /// Turns for calls at their server (`max_http_in_flight`); the others wait.
    slots: Arc<Semaphore>,
    exchange: Option<Addr<TokenExchangeActor>>,
    session: SessionSlot,
}

/// What the HTTP proxy is set up with (from the runtime's configuration).
pub struct HttpSettings {
    pub max_body: usize,
    pub default_timeout: Duration,
    pub audience_origins: AudienceOrigins,
    pub max_in_flight: usize,
}

impl HttpProxyActor {
    /// Uses the trust settings (extra roots, pins) of `oidc`'s configuration.
    pub fn new(oidc: OidcClient, settings: HttpSettings) -> Result<Self, String> {
        let config = oidc.config();
        let shared = http_client(
            &config.tls,
            None,
            &config.user_agent,
            settings.default_timeout,
        )?;
        Ok(Self {
            oidc,
            shared,
            max_body: settings.max_body,
            default_timeout: settings.default_timeout,
            audience_origins: settings.audience_origins,
            slots: Arc::new(Semaphore::new(
                settings.max_in_flight.clamp(1, Semaphore::MAX_PERMITS),
            )),
            exchange: None,
            session: SessionSlot::default(),
        })
    }

    /// Where it gets the tokens of requests that name an audience.
    pub fn with_tokens(mut self, exchange: Addr<TokenExchangeActor>, session: SessionSlot) -> Self {
        self.exchange = Some(exchange);
        self.session = session;
        self
    }

    /// The token of `audience` for a call to `url`, with what may receive it; a failure ends
    /// the request before anything is sent.
    fn authorise(
        &self,
        audience: Option<String>,
        url: &str,
        span: tracing::Span,
        traceparent: Option<String>,
        report: SharedReport,
    ) -> Result<impl std::future::Future<Output = Result<Option<ResourceToken>, Failure>>, Failure>
    {
        let allowed = audience
            .as_deref()
            .map(|audience| self.audience_origins.of(audience).to_vec());
        // Where the token may go is checked before it is fetched: a refused URL costs no
        // exchange and nothing is sent.
        if let (Some(audience), Some(allowed)) = (audience.as_deref(), allowed.as_deref()) {
            if let Ok(url) = url::Url::parse(url) {
                if let Err(why) = mc_oidc::http::check_token_destination(audience, allowed, &url) {
                    return Err(Failure::new(
                        StatusType::Failed,
                        error_code::TOKEN_ORIGIN_NOT_ALLOWED,
                        format!("{why}; nothing was sent"),
                    ));
                }
            }
        }
        let session = self.session.get();
        let exchange = self.exchange.clone();
        // The report travels with the token request: a gone registration is an outcome.
        Ok(async move {
            let (audience, session) = match (audience, session) {
                (None, _) => return Ok(None),
                (Some(_), None) => {
                    return Err(Failure::new(
                        StatusType::LoginRequired,
                        error_code::INVALID_STATE,
                        "log in before sending a request with an audience",
                    ))
                }
                (Some(audience), Some(session)) => (audience, session),
            };
            let exchange =
                exchange.ok_or_else(|| Failure::internal("the HTTP proxy has no token source"))?;
            let user = session.user.clone();
            let key = Arc::clone(&session.key);
            let token = match exchange
                .send(Exchange {
                    session,
                    audience: audience.clone(),
                    span,
                    traceparent,
                })
                .await
            {
                Ok(Ok(token)) => token,
                Ok(Err(failure)) => {
                    if failure.status == StatusType::OfflineNotActivated {
                        send(&report, Outcome::CredentialFailed { user });
                    }
                    return Err(failure);
                }
                Err(_) => return Err(Failure::component_stopped("token-exchange actor")),
            };
            Ok(Some(ResourceToken {
                audience,
                token: TokenSet {
                    access_token: token.token,
                    token_type: token.token_type,
                    expires_at: token.expires_at,
                    refresh_token: None,
                    scope: None,
                },
                key,
                allowed: allowed.unwrap_or_default(),
            }))
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

impl Handler<Admitted<CreateHttpCommonRequest>> for HttpProxyActor {
    type Result = ResponseFuture<CreateHttpCommonResultEvent>;

    fn handle(
        &mut self,
        mut msg: Admitted<CreateHttpCommonRequest>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let request = msg.event;
        let span = msg.admission.span.clone();
        let audience = request.effective_audience().map(str::to_string);
        let traceparent = msg.admission.traceparent.clone();
        let report: SharedReport = Arc::new(std::sync::Mutex::new(std::mem::replace(
            &mut msg.report,
            super::Report::none(),
        )));
        let user = self.session.get().map(|s| s.user.clone());
        let authorised = self.authorise(
            audience,
            &request.full_url,
            span.clone(),
            traceparent.clone(),
            report.clone(),
        );
        let auth = match authorised {
            Ok(auth) => auth,
            Err(failure) => return Box::pin(async move { from_failure(&failure) }),
        };
        let timeout = request
            .timeout
            .map(Duration::from_millis)
            .unwrap_or(self.default_timeout);
        let client = self.client_for(&request);
        let resource_request =
            resource_request(&request, timeout, self.max_body, traceparent.as_deref());
        let oidc = self.oidc.clone();
        let slots = Arc::clone(&self.slots);
        Box::pin(
            async move {
                let auth = match auth.await {
                    Ok(auth) => auth,
                    Err(failure) => return from_failure(&failure),
                };
                // At most max_http_in_flight calls at the server at once; the others wait here.
                let Ok(_slot) = slots.acquire_owned().await else {
                    return from_failure(&Failure::internal("the HTTP call limit was closed"));
                };
                let client = match client {
                    Ok(client) => client,
                    Err(failure) => return *failure,
                };
                let resource_request = match resource_request {
                    Ok(request) => request,
                    Err(failure) => return *failure,
                };
                match oidc
                    .send_resource(&client, resource_request, auth.as_ref())
                    .await
                {
                    Ok(answer) => {
                        let step_up = (answer.status == 401)
                            .then(|| mc_oidc::step_up_challenge(&answer.headers))
                            .flatten();
                        let mut result = CreateHttpCommonResultEvent::from_info(ResultInfo::ok());
                        if let (Some(challenge), Some(user)) = (step_up, user) {
                            // RFC 9470: the resource wants a stronger or fresher login. The
                            // call itself succeeded (status success, httpStatus 401); the
                            // result and an IdpLoginRequiredEvent tell the app to log in.
                            result.has_error_occurred = true;
                            result.error_code = error_code::STEP_UP_REQUIRED;
                            result.error_description = "the resource asks for a stronger or fresher login (RFC 9470); log in at the IDP with the acrValues/maxAge of the IdpLoginRequiredEvent".into();
                            result.next_action = Some(NextAction::LogIn);
                            send(
                                &report,
                                Outcome::StepUpRequired {
                                    user,
                                    acr_values: challenge.acr_values,
                                    max_age: challenge.max_age,
                                },
                            );
                        }
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
                    Err(failure) => failure_result(failure, &request.full_url),
                }
            }
            .instrument(span),
        )
    }
}

/// The request's report, shared by the token step and the answer step (each may report).
type SharedReport = Arc<std::sync::Mutex<super::Report>>;

fn send(report: &SharedReport, outcome: Outcome) {
    if let Ok(mut report) = report.lock() {
        report.send(outcome);
    }
}

/// The result of a request that failed before its call (a token refused or not to be had).
fn from_failure(failure: &Failure) -> CreateHttpCommonResultEvent {
    CreateHttpCommonResultEvent::from_info(failure.info())
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
    traceparent: Option<&str>,
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
    // The request's trace reaches the server, unless the app set its own `traceparent`.
    if let Some(value) = traceparent.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.entry("traceparent").or_insert(value);
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
