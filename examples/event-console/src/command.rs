//! The interactive prompt's commands: parsing a typed line into the request to post.
//!
//! Parsing never fails with a panic: any line gives a [`Command`] or a usage message saying
//! what to type instead.

use mc_events::{
    AppVersion, AuthenticationMode, ClearBehavior, ClearIamTokenCacheEvent,
    CreateHttpCommonRequest, DeleteIamTokenByAudienceEvent, DeleteUserEvent,
    EnrollAnonymousUserEvent, ExchangeIamTokenEvent, GetIamAccessTokenClaimsEvent,
    GetInformationEvent, GetStateEvent, HttpMethod, OfflineLoginEvent, Request, RestartEvent,
    StartEvent, SwitchWorkspaceEvent, UserIdentifier,
};

/// The command names, for `help` and tab completion.
pub const COMMAND_NAMES: &[&str] = &[
    "start",
    "restart",
    "enroll",
    "login",
    "exchange",
    "claims",
    "info",
    "state",
    "clear-cache",
    "delete-audience",
    "http",
    "delete",
    "workspace",
    "login-user",
    "logout",
    "json",
    "help",
    "quit",
];

/// The options of a command, for tab completion.
pub fn options_of(command: &str) -> &'static [&'static str] {
    match command {
        "enroll" => &["--mode", "--client", "--password", "--pin"],
        "login" => &["--password", "--pin"],
        "exchange" => &["--force"],
        "http" => &["--audience", "--no-audience"],
        _ => &[],
    }
}

/// The client of `login-user` when none is given: the native client of the Keycloak realm
/// (crates/mc-interop/keycloak/demo-realm.json).
pub const DEFAULT_USER_CLIENT: &str = "demo-app";

/// Values completed after `--mode`.
pub const MODE_NAMES: &[&str] = &["no", "password", "biometric", "pin"];

pub const HELP: &str = "\
Commands (each posts one request event; every event the runtime emits is printed):
  start                                   StartEvent
  restart                                 RestartEvent (keeps enrolled users)
  enroll [TENANT] [--mode no|password|biometric|pin] [--client ID] [--password PW | --pin PIN]
                                          EnrollAnonymousUserEvent (a PIN is 6-12 digits; it
                                          travels in the `password` field)
  login [TENANT/USER] [--password PW | --pin PIN]
                                          OfflineLoginEvent (default: the last user)
  exchange [AUDIENCE] [--force]           ExchangeIamTokenEvent
  claims                                  GetIamAccessTokenClaimsEvent
  info                                    GetInformationEvent
  state                                   GetStateEvent
  clear-cache [all|access|offline]        ClearIamTokenCacheEvent; the default `all` is
                                          CLEAR_ALL, which logs out (the stored offline
                                          token is destroyed); `access` keeps the login
  delete-audience AUD...                  DeleteIamTokenByAudienceEvent
  http METHOD PATH_OR_URL [BODY] [--audience AUD | --no-audience]
                                          CreateHttpCommonRequest; a path is resolved against
                                          the server URL, which gets the default audience
  delete [TENANT/USER]                    DeleteUserEvent (default: the logged-in user)
  workspace TENANT                        SwitchWorkspaceEvent: that tenant's user becomes the
                                          one `login` logs in (the session ends)
  login-user [TENANT] [CLIENT]            an identified user's login in the browser:
                                          CreateAuthorizationRequestEvent, the login page
                                          (opened with xdg-open when there is one), the
                                          redirect to 127.0.0.1, SetAuthorisationCodeEvent
                                          (default client: demo-app)
  logout                                  ClearIamTokenCacheEvent CLEAR_ALL, then RestartEvent
  json {...}                              post a raw request event in its JSON form
  help                                    this text
  quit                                    leave (also Ctrl-D)
Quote arguments with spaces: http POST /demo/echo '{\"hello\": \"world\"}'";

/// What the defaults of omitted arguments are.
#[derive(Clone, Debug)]
pub struct Defaults {
    pub tenant: String,
    pub client_id: String,
    pub audience: String,
    /// Base URL of the IDP without a trailing slash; `http` paths are resolved against it.
    pub server_url: String,
}

/// A parsed line.
#[derive(Debug)]
pub enum Command {
    /// Nothing typed.
    Nothing,
    Post(Box<Request>),
    /// The text after `json`, posted as it is.
    PostJson(String),
    /// `login-user`: the browser login of an identified user.
    LoginUser {
        tenant: String,
        client: String,
    },
    /// `logout`: ClearIamTokenCache(CLEAR_ALL) + Restart.
    Logout,
    Help,
    Quit,
}

/// Parses one typed line. The error is a usage hint for the user.
pub fn parse(line: &str, defaults: &Defaults) -> Result<Command, String> {
    let trimmed = line.trim();
    let (name, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim_start()),
        None => (trimmed, ""),
    };
    if name == "json" {
        if rest.is_empty() {
            return Err("usage: json {\"type\": \"GetStateEvent\"}".to_owned());
        }
        return Ok(Command::PostJson(rest.to_owned()));
    }
    let words = split_words(rest)?;
    let mut args = Args::new(words);
    let request: Request = match name {
        "" => return Ok(Command::Nothing),
        "help" | "?" => return args.done(Command::Help, "help"),
        "quit" | "exit" => return args.done(Command::Quit, "quit"),
        "login-user" => {
            const USAGE: &str = "login-user [TENANT] [CLIENT]";
            let tenant = args
                .optional_positional()
                .unwrap_or_else(|| defaults.tenant.clone());
            let client = args
                .optional_positional()
                .unwrap_or_else(|| DEFAULT_USER_CLIENT.to_owned());
            return args.done(Command::LoginUser { tenant, client }, USAGE);
        }
        "logout" => return args.done(Command::Logout, "logout"),
        "start" => args.done(
            StartEvent {
                app_name: Some("event-console".to_owned()),
                app_version: Some(app_version()),
                ..StartEvent::default()
            }
            .into(),
            "start",
        )?,
        "restart" => args.done(
            RestartEvent {
                app_name: Some("event-console".to_owned()),
                app_version: Some(app_version()),
                ..RestartEvent::default()
            }
            .into(),
            "restart",
        )?,
        "enroll" => enroll(&mut args, defaults)?,
        "login" => {
            const USAGE: &str = "login [TENANT/USER] [--password PW | --pin PIN]";
            let password = secret(&mut args, USAGE)?;
            let mut event = OfflineLoginEvent::new();
            if let Some(user) = args.optional_positional() {
                event = event.for_user(parse_user(&user, USAGE)?);
            }
            if let Some(password) = password {
                event = event.with_password(password);
            }
            args.done(event.into(), USAGE)?
        }
        "exchange" => {
            const USAGE: &str = "exchange [AUDIENCE] [--force]";
            let force = args.flag("--force");
            let audience = args
                .optional_positional()
                .unwrap_or_else(|| defaults.audience.clone());
            args.done(
                ExchangeIamTokenEvent::new(audience)
                    .with_force_update(force)
                    .into(),
                USAGE,
            )?
        }
        "claims" => args.done(GetIamAccessTokenClaimsEvent::new().into(), "claims")?,
        "info" => args.done(GetInformationEvent::new().into(), "info")?,
        "state" => args.done(GetStateEvent::new().into(), "state")?,
        "clear-cache" => {
            const USAGE: &str = "clear-cache [all|access|offline]";
            let behavior = match args.optional_positional().as_deref() {
                None | Some("all") => ClearBehavior::ClearAll,
                Some("access") => ClearBehavior::ClearAccessAndRefresh,
                Some("offline") => ClearBehavior::ClearOffline,
                Some(_) => return Err(format!("usage: {USAGE}")),
            };
            args.done(
                ClearIamTokenCacheEvent::new()
                    .with_behavior(behavior)
                    .into(),
                USAGE,
            )?
        }
        "delete-audience" => {
            const USAGE: &str = "delete-audience AUD...";
            let audiences = args.remaining_positionals(USAGE)?;
            if audiences.is_empty() {
                return Err(format!("usage: {USAGE}"));
            }
            DeleteIamTokenByAudienceEvent::new(audiences).into()
        }
        "http" => http(&mut args, defaults)?,
        "workspace" => {
            const USAGE: &str = "workspace TENANT";
            let Some(tenant) = args.optional_positional() else {
                return Err(format!("usage: {USAGE}"));
            };
            args.done(SwitchWorkspaceEvent::new(tenant).into(), USAGE)?
        }
        "delete" => {
            const USAGE: &str = "delete [TENANT/USER]";
            let mut event = DeleteUserEvent::new();
            if let Some(user) = args.optional_positional() {
                event = event.for_user(parse_user(&user, USAGE)?);
            }
            args.done(event.into(), USAGE)?
        }
        other => {
            return Err(format!(
                "unknown command `{}`; type `help` for the list",
                cut(other, 40)
            ))
        }
    };
    Ok(Command::Post(Box::new(request)))
}

fn enroll(args: &mut Args, defaults: &Defaults) -> Result<Request, String> {
    const USAGE: &str = "enroll [TENANT] [--mode no|password|biometric|pin] [--client ID] \
                         [--password PW | --pin PIN]";
    let mode = match args.option("--mode", USAGE)? {
        None => AuthenticationMode::No,
        Some(mode) => {
            AuthenticationMode::from_name(&mode.to_ascii_uppercase()).ok_or_else(|| {
                format!("--mode must be no, password, biometric or pin; usage: {USAGE}")
            })?
        }
    };
    let client = args
        .option("--client", USAGE)?
        .unwrap_or_else(|| defaults.client_id.clone());
    let password = secret(args, USAGE)?;
    let tenant = args
        .optional_positional()
        .unwrap_or_else(|| defaults.tenant.clone());
    let mut event = EnrollAnonymousUserEvent::new(tenant, mode, client);
    if let Some(password) = password {
        event = event.with_password(password);
    }
    args.done(event.into(), USAGE)
}

/// `--password PW` or `--pin PIN` (the PIN travels in the `password` field, as in the
/// MC-SDK); not both.
fn secret(args: &mut Args, usage: &str) -> Result<Option<String>, String> {
    let password = args.option("--password", usage)?;
    let pin = args.option("--pin", usage)?;
    match (password, pin) {
        (Some(_), Some(_)) => Err(format!(
            "give --password or --pin, not both; usage: {usage}"
        )),
        (password, pin) => Ok(password.or(pin)),
    }
}

fn http(args: &mut Args, defaults: &Defaults) -> Result<Request, String> {
    const USAGE: &str = "http METHOD PATH_OR_URL [BODY] [--audience AUD | --no-audience]";
    let audience = args.option("--audience", USAGE)?;
    let no_audience = args.flag("--no-audience");
    if audience.is_some() && no_audience {
        return Err(format!(
            "give --audience or --no-audience, not both; usage: {USAGE}"
        ));
    }
    let (Some(method), Some(target)) = (args.optional_positional(), args.optional_positional())
    else {
        return Err(format!("usage: {USAGE}"));
    };
    let method = HttpMethod::from_name(&method.to_ascii_uppercase()).ok_or_else(|| {
        format!(
            "unknown method `{}`; use GET, POST, PUT, DELETE, PATCH or HEAD",
            cut(&method, 20)
        )
    })?;
    let body = args.optional_positional();
    let (url, on_server) = resolve_url(&target, &defaults.server_url)?;
    let mut request = CreateHttpCommonRequest::new(url, method);
    if let Some(body) = body {
        let content_type = if serde_json::from_str::<serde_json::Value>(&body).is_ok() {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        request = request.with_content(body, content_type);
    }
    let audience = match audience {
        Some(audience) => Some(audience),
        None if on_server && !no_audience => Some(defaults.audience.clone()),
        None => None,
    };
    if let Some(audience) = audience {
        request = request.with_audience(audience);
    }
    args.done(request.into(), USAGE)
}

/// A path (`/demo/echo`, `demo/echo`) is resolved against the server URL; an absolute http(s)
/// URL is taken as it is. Also says whether the URL is on the server (same origin).
fn resolve_url(target: &str, server_url: &str) -> Result<(String, bool), String> {
    if target.starts_with("http://") || target.starts_with("https://") {
        let url = url::Url::parse(target)
            .map_err(|err| format!("`{}` is not a valid URL: {err}", cut(target, 80)))?;
        let on_server =
            url::Url::parse(server_url).is_ok_and(|server| server.origin() == url.origin());
        return Ok((url.to_string(), on_server));
    }
    if target.contains("://") {
        return Err("only http:// and https:// URLs, or a path on the server".to_owned());
    }
    let path = target.trim_start_matches('/');
    Ok((format!("{server_url}/{path}"), true))
}

fn parse_user(text: &str, usage: &str) -> Result<UserIdentifier, String> {
    match text.split_once('/') {
        Some((tenant, user)) if !tenant.is_empty() && !user.is_empty() => {
            Ok(UserIdentifier::new(tenant, user))
        }
        _ => Err(format!(
            "a user is TENANT/USER, e.g. demo/1b4e…; usage: {usage}"
        )),
    }
}

fn app_version() -> AppVersion {
    let part = |text: &str| text.parse().unwrap_or(0);
    AppVersion::new(
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

/// At most `max` characters of user input echoed in a message.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        format!("{}…", text.chars().take(max).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// Splits like a shell, without expansions: whitespace separates words, '…' and "…" quote,
/// a backslash escapes the next character (outside single quotes).
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"') | None, '\\') => {
                let escaped = chars.next().ok_or_else(|| {
                    "a backslash at the end of the line escapes nothing".to_owned()
                })?;
                current.push(escaped);
                in_word = true;
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if let Some(open) = quote {
        return Err(format!("unterminated {open}quote{open}; close it"));
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// The words after a command name: options are taken out first, then positionals in order.
struct Args {
    words: Vec<String>,
}

impl Args {
    fn new(words: Vec<String>) -> Self {
        Self { words }
    }

    /// Removes `--name` and reports whether it was there.
    fn flag(&mut self, name: &str) -> bool {
        let before = self.words.len();
        self.words.retain(|word| word != name);
        self.words.len() != before
    }

    /// Removes `--name VALUE` (or `--name=VALUE`) and returns the value.
    fn option(&mut self, name: &str, usage: &str) -> Result<Option<String>, String> {
        let prefix = format!("{name}=");
        if let Some(index) = self.words.iter().position(|w| w.starts_with(&prefix)) {
            let word = self.words.remove(index);
            return Ok(word.get(prefix.len()..).map(str::to_owned));
        }
        let Some(index) = self.words.iter().position(|w| w == name) else {
            return Ok(None);
        };
        self.words.remove(index);
        if index < self.words.len() {
            Ok(Some(self.words.remove(index)))
        } else {
            Err(format!("{name} needs a value; usage: {usage}"))
        }
    }

    /// Takes the next positional argument. Options must have been taken before.
    fn optional_positional(&mut self) -> Option<String> {
        if self.words.first().is_some_and(|w| !w.starts_with("--")) {
            Some(self.words.remove(0))
        } else {
            None
        }
    }

    fn remaining_positionals(&mut self, usage: &str) -> Result<Vec<String>, String> {
        let words = std::mem::take(&mut self.words);
        if let Some(option) = words.iter().find(|w| w.starts_with("--")) {
            return Err(format!(
                "unknown option `{}`; usage: {usage}",
                cut(option, 40)
            ));
        }
        Ok(words)
    }

    /// Fails when words are left over (an unknown option or one argument too many).
    fn done<T>(&self, value: T, usage: &str) -> Result<T, String> {
        match self.words.first() {
            None => Ok(value),
            Some(word) if word.starts_with("--") => Err(format!(
                "unknown option `{}`; usage: {usage}",
                cut(word, 40)
            )),
            Some(word) => Err(format!(
                "unexpected argument `{}`; usage: {usage}",
                cut(word, 40)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_events::RequestEvent;

    fn defaults() -> Defaults {
        Defaults {
            tenant: "demo".into(),
            client_id: "AnonymousUserEnrollment".into(),
            audience: "demo-api".into(),
            server_url: "http://127.0.0.1:9000".into(),
        }
    }

    fn request(line: &str) -> RequestEvent {
        match parse(line, &defaults()) {
            Ok(Command::Post(request)) => request.event,
            other => panic!("{line}: expected a request, got {other:?}"),
        }
    }

    #[test]
    fn login_user_and_logout_parse_with_defaults_and_refuse_extra_words() {
        match parse("login-user", &defaults()) {
            Ok(Command::LoginUser { tenant, client }) => {
                assert_eq!((tenant.as_str(), client.as_str()), ("demo", "demo-app"))
            }
            other => panic!("{other:?}"),
        }
        match parse("login-user other my-app", &defaults()) {
            Ok(Command::LoginUser { tenant, client }) => {
                assert_eq!((tenant.as_str(), client.as_str()), ("other", "my-app"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("logout", &defaults()), Ok(Command::Logout)));
        for bad in [
            "login-user a b c",
            "login-user --password pw",
            "logout now",
            "logout --all",
        ] {
            let usage = parse(bad, &defaults()).unwrap_err();
            assert!(usage.contains("usage:"), "{bad}: {usage}");
            assert!(!usage.contains("pw "), "{bad}: {usage}");
        }
    }

    #[test]
    fn enroll_with_defaults_and_options() {
        let RequestEvent::EnrollAnonymousUserEvent(e) = request("enroll") else {
            panic!("not an enroll");
        };
        assert_eq!(
            (
                e.tenant_id.as_str(),
                e.authentication_mode,
                e.client_id.as_str()
            ),
            ("demo", AuthenticationMode::No, "AnonymousUserEnrollment")
        );
        let RequestEvent::EnrollAnonymousUserEvent(e) =
            request("enroll other --mode PASSWORD --client C1 --password 's3cret pw'")
        else {
            panic!("not an enroll");
        };
        assert_eq!(e.tenant_id, "other");
        assert_eq!(e.authentication_mode, AuthenticationMode::Password);
        assert_eq!(e.client_id, "C1");
        assert_eq!(e.password.as_ref().map(|p| p.expose()), Some("s3cret pw"));
    }

    #[test]
    fn pin_mode_and_workspace_parse_and_refuse_what_they_cannot_take() {
        let RequestEvent::EnrollAnonymousUserEvent(e) = request("enroll --mode pin --pin 482916")
        else {
            panic!("not an enroll");
        };
        assert_eq!(e.authentication_mode, AuthenticationMode::Pin);
        assert_eq!(e.password.as_ref().map(|p| p.expose()), Some("482916"));
        let RequestEvent::OfflineLoginEvent(e) = request("login demo/u1 --pin 482916") else {
            panic!("not a login");
        };
        assert_eq!(e.password.as_ref().map(|p| p.expose()), Some("482916"));
        let RequestEvent::SwitchWorkspaceEvent(e) = request("workspace other") else {
            panic!("not a switch");
        };
        assert_eq!(e.tenant_id, "other");
        for bad in [
            "enroll --mode pin --pin 482916 --password pw",
            "login --pin 1 --password 2",
            "enroll --mode face",
            "workspace",
            "workspace a b",
            "workspace --pin 1",
        ] {
            let usage = parse(bad, &defaults()).unwrap_err();
            assert!(usage.contains("usage:"), "{bad}: {usage}");
        }
    }

    #[test]
    fn http_paths_resolve_against_the_server_with_the_default_audience() {
        let RequestEvent::CreateHttpCommonRequest(r) = request("http get /demo/echo") else {
            panic!("not http");
        };
        assert_eq!(r.full_url, "http://127.0.0.1:9000/demo/echo");
        assert_eq!(r.method, HttpMethod::Get);
        assert_eq!(r.audience.as_deref(), Some("demo-api"));

        let RequestEvent::CreateHttpCommonRequest(r) =
            request(r#"http POST http://example.com/x '{"a": 1}' --audience other"#)
        else {
            panic!("not http");
        };
        assert_eq!(r.full_url, "http://example.com/x");
        assert_eq!(r.audience.as_deref(), Some("other"));
        assert_eq!(r.content.as_deref(), Some(r#"{"a": 1}"#));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));

        let RequestEvent::CreateHttpCommonRequest(r) = request("http GET https://example.com/")
        else {
            panic!("not http");
        };
        assert_eq!(r.audience, None, "no token for another origin by default");

        let RequestEvent::CreateHttpCommonRequest(r) = request("http GET /demo/echo --no-audience")
        else {
            panic!("not http");
        };
        assert_eq!(r.audience, None);
    }

    #[test]
    fn users_exchange_and_lists() {
        let RequestEvent::OfflineLoginEvent(e) = request("login demo/u-1") else {
            panic!("not a login");
        };
        assert_eq!(e.user_identifier, Some(UserIdentifier::new("demo", "u-1")));
        let RequestEvent::ExchangeIamTokenEvent(e) = request("exchange --force") else {
            panic!("not an exchange");
        };
        assert_eq!((e.audience.as_str(), e.force_update), ("demo-api", true));
        let RequestEvent::DeleteIamTokenByAudienceEvent(e) = request("delete-audience a b") else {
            panic!("not delete-audience");
        };
        assert_eq!(e.audiences, vec!["a", "b"]);
        assert!(matches!(
            request("delete"),
            RequestEvent::DeleteUserEvent(_)
        ));
        assert!(matches!(request("start"), RequestEvent::StartEvent(_)));
        assert!(matches!(
            request("clear-cache offline"),
            RequestEvent::ClearIamTokenCacheEvent(ClearIamTokenCacheEvent {
                clear_behavior: ClearBehavior::ClearOffline,
                ..
            })
        ));
    }

    #[test]
    fn bad_lines_give_usage_hints() {
        let d = defaults();
        for line in [
            "frobnicate",
            "enroll --mode face",
            "enroll --client",
            "login nouser",
            "login /x",
            "http",
            "http GET",
            "http FETCH /x",
            "http GET ftp://x/y",
            "http GET /x --audience a --no-audience",
            "delete-audience",
            "start now",
            "exchange a --bogus",
            "clear-cache sometimes",
            "json",
            "enroll 'unterminated",
            "enroll trailing\\",
        ] {
            let err = parse(line, &d).expect_err(line);
            assert!(!err.is_empty(), "{line}");
        }
        assert!(parse("frobnicate", &d).unwrap_err().contains("help"));
    }

    #[test]
    fn other_commands() {
        let d = defaults();
        assert!(matches!(parse("  ", &d), Ok(Command::Nothing)));
        assert!(matches!(parse("help", &d), Ok(Command::Help)));
        assert!(matches!(parse("quit", &d), Ok(Command::Quit)));
        match parse(r#"json {"type": "GetStateEvent"}"#, &d) {
            Ok(Command::PostJson(text)) => assert_eq!(text, r#"{"type": "GetStateEvent"}"#),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"a "b c" 'd "e"' f\ g"#).unwrap(),
            vec!["a", "b c", r#"d "e""#, "f g"]
        );
        assert_eq!(split_words("''").unwrap(), vec![""]);
        assert!(split_words("\"open").is_err());
    }
}
