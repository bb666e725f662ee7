"""An identified user through the Python bindings against the development IDP: the
authorization request, the IDP's login page filled in and posted as a browser would
(http.client, redirects not followed), the code handed over, exchange, logout; and the same
redirect replayed, which must log nobody in."""

import html.parser
import http.client
import urllib.parse

import mc_runtime as mc
from mc_runtime.mc_events import (
    AuthenticationMode,
    ClearBehavior,
    ClearIamTokenCacheEvent,
    CreateAuthorizationRequestEvent,
    Event,
    ExchangeIamTokenEvent,
    GetInformationEvent,
    OfflineLoginEvent,
    RequestEvent,
    RestartEvent,
    SetAuthorisationCodeEvent,
    StartEvent,
    StatusType,
)

from conftest import AUDIENCE, TENANT, run

# The dev IDP's public native client and default user (mc-devidp --help).
CLIENT = "demo-app"
REDIRECT_URI = "http://127.0.0.1/callback"
USER, PASSWORD, ONE_TIME_CODE = "demo", "demo-password", "123456"


def post(controller, request):
    return run(controller.post_event(request))


def status(event):
    return mc.event_status(event)


class LoginForm(html.parser.HTMLParser):
    """The page's one <form>: its action and hidden fields, and whether it asks for a code."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.hidden = {}
        self.asks_code = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs.get("action")
        elif tag == "input" and attrs.get("type") == "hidden":
            self.hidden[attrs["name"]] = attrs.get("value") or ""
        elif tag == "input" and attrs.get("name") == "otp":
            self.asks_code = True


def request(method, url, body=None, headers=None):
    """One HTTP request, redirects not followed (a browser's view of a 302)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Location"), response.read().decode()
    finally:
        connection.close()


def browser_login(authorization_url):
    """GET the login page, post its form as a browser would; the Location it redirects to."""
    code, location, page = request("GET", authorization_url)
    assert code == 200 and location is None, (code, location, page[:500])
    form = LoginForm()
    form.feed(page)
    assert form.action, page[:500]
    fields = dict(form.hidden, username=USER, password=PASSWORD, action="login")
    if form.asks_code:
        fields["otp"] = ONE_TIME_CODE
    code, location, page = request(
        "POST",
        urllib.parse.urljoin(authorization_url, form.action),
        body=urllib.parse.urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert code in (302, 303) and location, (code, page[:500])
    return urllib.parse.urljoin(authorization_url, location)


def test_identified_login_exchange_and_logout(memory_controller):
    controller = memory_controller
    assert status(post(controller, RequestEvent.START_EVENT(StartEvent(app_name="pytest")))) == StatusType.OK

    created = post(
        controller,
        RequestEvent.CREATE_AUTHORIZATION_REQUEST_EVENT(
            CreateAuthorizationRequestEvent(tenant_id=TENANT, client_id=CLIENT, redirect_uri=REDIRECT_URI)
        ),
    )
    assert isinstance(created, Event.CREATE_AUTHORIZATION_REQUEST_RESULT_EVENT)
    assert status(created) == StatusType.OK, created[0].info.error_description
    assert created[0].state

    redirect_url = browser_login(created[0].authorization_url)
    assert redirect_url.startswith(REDIRECT_URI + "?"), redirect_url
    set_code = RequestEvent.SET_AUTHORISATION_CODE_EVENT(
        SetAuthorisationCodeEvent(
            tenant_id=TENANT,
            client_id=CLIENT,
            authentication_mode=AuthenticationMode.NO,
            redirect_url=redirect_url,
        )
    )
    logged_in = post(controller, set_code)
    assert isinstance(logged_in, Event.STATUS_RESULT_EVENT)
    assert status(logged_in) == StatusType.OK, logged_in[0].info.error_description
    # The same redirect again: its state is used up, and the user stays who it was.
    assert status(post(controller, set_code)) != StatusType.OK

    information = post(controller, RequestEvent.GET_INFORMATION_EVENT(GetInformationEvent()))
    user = information[0].logged_in_user
    assert user.tenant_id == TENANT and user.user_id, user
    exchanged = post(controller, RequestEvent.EXCHANGE_IAM_TOKEN_EVENT(ExchangeIamTokenEvent(audience=AUDIENCE)))
    assert status(exchanged) == StatusType.OK, exchanged[0].info.error_description

    # Logout as the MC-SDK does it: CLEAR_ALL, Restart; offline login is then refused.
    cleared = post(
        controller,
        RequestEvent.CLEAR_IAM_TOKEN_CACHE_EVENT(ClearIamTokenCacheEvent(clear_behavior=ClearBehavior.CLEAR_ALL)),
    )
    assert status(cleared) == StatusType.OK
    assert status(post(controller, RequestEvent.RESTART_EVENT(RestartEvent(app_name="pytest")))) == StatusType.OK
    refused = post(controller, RequestEvent.OFFLINE_LOGIN_EVENT(OfflineLoginEvent()))
    assert status(refused) == StatusType.NO_TOKEN_DATA_AVAILABLE


def test_a_forged_state_logs_nobody_in(memory_controller):
    controller = memory_controller
    post(controller, RequestEvent.START_EVENT(StartEvent(app_name="pytest")))
    created = post(
        controller,
        RequestEvent.CREATE_AUTHORIZATION_REQUEST_EVENT(
            CreateAuthorizationRequestEvent(tenant_id=TENANT, client_id=CLIENT, redirect_uri=REDIRECT_URI)
        ),
    )
    redirect_url = browser_login(created[0].authorization_url)
    parts = urllib.parse.urlsplit(redirect_url)
    query = dict(urllib.parse.parse_qsl(parts.query), state="forged-state")
    forged = parts._replace(query=urllib.parse.urlencode(query)).geturl()
    answer = post(
        controller,
        RequestEvent.SET_AUTHORISATION_CODE_EVENT(
            SetAuthorisationCodeEvent(
                tenant_id=TENANT,
                client_id=CLIENT,
                authentication_mode=AuthenticationMode.NO,
                redirect_url=forged,
            )
        ),
    )
    assert status(answer) != StatusType.OK
    information = post(controller, RequestEvent.GET_INFORMATION_EVENT(GetInformationEvent()))
    assert information[0].logged_in_user is None
