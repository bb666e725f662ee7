//! [`form_login`]: what a browser does on the dev IDP's login page, for tests and the demo.
//!
//! It reads only the page this IDP renders (one `<form>` with double-quoted attributes); it is
//! not an HTML parser for other IDPs' pages.

use reqwest::header::LOCATION;
use reqwest::Url;

/// Why [`form_login`] did not end in a redirect.
#[derive(Debug, thiserror::Error)]
pub enum FormLoginError {
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the authorization URL is not a URL: {0}")]
    BadUrl(#[from] url::ParseError),
    /// An error page, or anything else that is neither a login form nor a redirect.
    #[error("no login form: the IDP answered {status}: {message}")]
    NoForm { status: u16, message: String },
    /// The form came back with a message (wrong username, password or second factor).
    #[error("the IDP refused the login: {message}")]
    Refused { message: String },
    #[error("the login page asks for a second factor and none was given")]
    SecondFactorRequired,
    #[error(
        "the HTTP client followed a redirect; build it with reqwest::redirect::Policy::none()"
    )]
    FollowedRedirect,
}

/// Opens `authorization_url`, fills the login form with `username`, `password` and, when the
/// page asks for it, `second_factor`, submits it and answers the URL the IDP redirects to
/// (the app's redirect URI with `code`, `state` and `iss`, or with `error=`), without following it.
/// A redirect straight from the authorization URL (an error) is answered the same way.
///
/// `http` must not follow redirects (`reqwest::redirect::Policy::none()`).
pub async fn form_login(
    http: &reqwest::Client,
    authorization_url: &str,
    username: &str,
    password: &str,
    second_factor: Option<&str>,
) -> Result<String, FormLoginError> {
    let page_url = Url::parse(authorization_url)?;
    let page = http.get(page_url.clone()).send().await?;
    if let Some(location) = redirect_location(&page) {
        return Ok(location);
    }
    if page.url() != &page_url {
        return Err(FormLoginError::FollowedRedirect);
    }
    let status = page.status().as_u16();
    let html = page.text().await?;
    let Some(form) = parse_form(&html) else {
        return Err(FormLoginError::NoForm {
            status,
            message: error_message(&html).unwrap_or_else(|| "no form on the page".to_owned()),
        });
    };
    let mut fields = form.hidden;
    fields.push(("username".to_owned(), username.to_owned()));
    fields.push(("password".to_owned(), password.to_owned()));
    if form.asks_second_factor {
        let code = second_factor.ok_or(FormLoginError::SecondFactorRequired)?;
        fields.push(("otp".to_owned(), code.to_owned()));
    }
    fields.push(("action".to_owned(), "login".to_owned()));
    let action = page_url.join(&form.action)?;
    // The password goes back to the origin that asked for it, nowhere else.
    if action.origin() != page_url.origin() {
        return Err(FormLoginError::NoForm {
            status,
            message: format!(
                "the login form posts to another origin ({}); the password was not sent",
                action.origin().ascii_serialization()
            ),
        });
    }
    let answer = http.post(action).form(&fields).send().await?;
    if let Some(location) = redirect_location(&answer) {
        return Ok(location);
    }
    let status = answer.status().as_u16();
    let html = answer.text().await?;
    match (parse_form(&html), error_message(&html)) {
        (Some(_), message) => Err(FormLoginError::Refused {
            message: message.unwrap_or_default(),
        }),
        (None, message) => Err(FormLoginError::NoForm {
            status,
            message: message.unwrap_or_default(),
        }),
    }
}

fn redirect_location(response: &reqwest::Response) -> Option<String> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    // Relative locations are resolved against the request, as a browser would.
    Some(
        response
            .url()
            .join(location)
            .map_or_else(|_| location.to_owned(), String::from),
    )
}

struct LoginForm {
    action: String,
    hidden: Vec<(String, String)>,
    asks_second_factor: bool,
}

fn parse_form(html: &str) -> Option<LoginForm> {
    let start = html.find("<form")?;
    let end = html[start..]
        .find("</form>")
        .map_or(html.len(), |e| start + e);
    let form_html = &html[start..end];
    let form_tag = &form_html[..form_html.find('>')?];
    let action = attribute(form_tag, "action")?;
    let mut hidden = Vec::new();
    let mut asks_second_factor = false;
    for input in form_html.split("<input").skip(1) {
        let tag = input.split('>').next().unwrap_or_default();
        let name = attribute(tag, "name").unwrap_or_default();
        if attribute(tag, "type").as_deref() == Some("hidden") {
            hidden.push((name, attribute(tag, "value").unwrap_or_default()));
        } else if name == "otp" {
            asks_second_factor = true;
        }
    }
    Some(LoginForm {
        action,
        hidden,
        asks_second_factor,
    })
}

/// The value of ` name="…"` in a tag, entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let len = tag[start..].find('"')?;
    Some(decode_entities(&tag[start..start + len]))
}

/// The text of the page's `class="error"` paragraph.
fn error_message(html: &str) -> Option<String> {
    let start = html.find("class=\"error\"")?;
    let text_start = start + html[start..].find('>')? + 1;
    let len = html[text_start..].find('<')?;
    Some(decode_entities(&html[text_start..text_start + len]))
}

fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::html_escape;

    #[test]
    fn escaped_attributes_come_back_as_they_were() {
        for value in ["a&b", "<x>", "\"q\"", "it's", "&amp;"] {
            let tag = format!(
                "<input type=\"hidden\" name=\"n\" value=\"{}\"",
                html_escape(value)
            );
            assert_eq!(attribute(&tag, "value").as_deref(), Some(value));
        }
    }

    #[test]
    fn a_page_without_a_form_is_not_a_form() {
        assert!(parse_form("<html><p class=\"error\">gone</p></html>").is_none());
        assert_eq!(
            error_message("<p class=\"error\" role=\"alert\">gone &amp; lost</p>").as_deref(),
            Some("gone & lost")
        );
    }
}
