/*
 * The anonymous-enrollment lifecycle through the C API, as a wrapper author would drive it:
 * start, enroll (posted with a callback), exchange an IAM token, an authenticated HTTP call,
 * restart, offline login, a second runtime on the same store, delete; a listener throughout,
 * and the misuse answers (NULL, invalid UTF-8, bad JSON, unknown listener).
 *
 *   lifecycle <server-url> <store-directory>
 *
 * Prints one "ok <step>" line per step and "lifecycle: PASS" at the end; exits 0 then, 1 on the
 * first failed check (with the reason on stderr), 2 on wrong arguments.
 * Built and run by crates/mc-capi/tests/c_lifecycle.rs and bindings/c/build.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mc_runtime.h"

#define TENANT "demo"
#define CLIENT "AnonymousUserEnrollment"
#define AUDIENCE "demo-api"
#define WAIT_SECONDS 20

static void fail(const char *step, const char *why, const char *json) {
    fprintf(stderr, "FAIL %s: %s\n", step, why);
    if (json != NULL) {
        fprintf(stderr, "  got: %s\n", json);
    } else {
        /* A refused call: its reason (the last failed call on this thread). */
        char *last = mc_last_error_message();
        if (last != NULL) {
            fprintf(stderr, "  last error: %s\n", last);
            mc_string_free(last);
        }
    }
    exit(1);
}

static void expect(int ok, const char *step, const char *why, const char *json) {
    if (!ok) {
        fail(step, why, json);
    }
}

/* The JSON the runtime sends is compact ("key":value), so a substring test is enough here. */
static int has(const char *json, const char *fragment) {
    return json != NULL && strstr(json, fragment) != NULL;
}

/* ---- a result posted with a callback, waited for on a condition variable ---- */

struct pending {
    pthread_mutex_t lock;
    pthread_cond_t done;
    char *json; /* our copy: the callback's string dies when it returns */
    pthread_t callback_thread;
};

static void on_result(const char *result_json, void *user_data) {
    struct pending *p = user_data;
    pthread_mutex_lock(&p->lock);
    p->json = strdup(result_json);
    p->callback_thread = pthread_self();
    pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->lock);
}

/* Posts with a callback, waits for it; the caller frees the answer with free(). */
static char *post_and_wait(const mc_runtime *rt, const char *step, const char *request) {
    struct pending p = {.json = NULL};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.done, NULL);
    int32_t status = mc_runtime_post_event(rt, request, on_result, &p);
    expect(status == MC_OK, step, "mc_runtime_post_event refused the request", NULL);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&p.lock);
    while (p.json == NULL) {
        if (pthread_cond_timedwait(&p.done, &p.lock, &deadline) == ETIMEDOUT) {
            fail(step, "no result callback in time", NULL);
        }
    }
    pthread_mutex_unlock(&p.lock);
    expect(!pthread_equal(p.callback_thread, pthread_self()), step,
           "the result callback ran on the posting thread", p.json);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.done);
    return p.json;
}

/* Blocking post; the caller frees the answer with mc_string_free. */
static char *post_blocking(const mc_runtime *rt, const char *step, const char *request) {
    char *json = mc_runtime_post_event_blocking(rt, request, WAIT_SECONDS * 1000);
    expect(json != NULL, step, "mc_runtime_post_event_blocking returned NULL", NULL);
    return json;
}

/* ---- a listener recording what it saw ---- */

struct seen {
    pthread_mutex_t lock;
    int events;
    int claims_pushed;  /* LoginTokenClaimsAvailableEvent */
    int status_results; /* StatusResultEvent (the enrollment's result) */
};

static void on_event(const char *event_json, void *user_data) {
    struct seen *s = user_data;
    pthread_mutex_lock(&s->lock);
    s->events++;
    if (has(event_json, "\"type\":\"LoginTokenClaimsAvailableEvent\"")) {
        s->claims_pushed++;
    }
    if (has(event_json, "\"type\":\"StatusResultEvent\"")) {
        s->status_results++;
    }
    pthread_mutex_unlock(&s->lock);
}

static int seen_claims(struct seen *s) {
    for (int i = 0; i < WAIT_SECONDS * 100; i++) {
        pthread_mutex_lock(&s->lock);
        int n = s->claims_pushed;
        pthread_mutex_unlock(&s->lock);
        if (n > 0) {
            return n;
        }
        struct timespec ten_ms = {0, 10 * 1000 * 1000};
        nanosleep(&ten_ms, NULL);
    }
    return 0;
}

static mc_runtime *new_runtime(const char *step, const char *url, const char *store) {
    char config[4096];
    int n = snprintf(config, sizeof config,
                     "{\"serverUrl\":\"%s\",\"storeDirectory\":\"%s\","
                     "\"audienceOrigins\":{\"" AUDIENCE "\":[\"%s\"]}}",
                     url, store, url);
    expect(n > 0 && (size_t)n < sizeof config, step, "arguments too long", NULL);
    mc_runtime *rt = NULL;
    expect(mc_runtime_new(config, &rt) == MC_OK && rt != NULL, step, "mc_runtime_new failed",
           NULL);
    return rt;
}

static void misuse(void) {
    const char *step = "misuse";
    mc_runtime *rt = (mc_runtime *)1; /* must be reset to NULL on failure */
    expect(mc_runtime_new(NULL, &rt) == MC_ERR_NULL_ARGUMENT && rt == NULL, step,
           "NULL config not refused", NULL);
    char *why = mc_last_error_message();
    expect(has(why, "config_json"), step, "the last error does not name the argument", why);
    mc_string_free(why);
    expect(mc_runtime_new("{\"serverUrl\":\"http://127.0.0.1:1\",\"stor\xff\"}", &rt) ==
               MC_ERR_INVALID_UTF8,
           step, "invalid UTF-8 not refused", NULL);
    expect(mc_runtime_new("{\"serverUrl\":\"http://127.0.0.1:1\"}", &rt) == MC_ERR_INVALID_CONFIG,
           step, "a configuration without a store not refused", NULL);
    why = mc_last_error_message();
    expect(has(why, "storeDirectory"), step, "the last error does not say what is missing", why);
    mc_string_free(why);
    expect(mc_runtime_post_event(NULL, "{}", on_result, NULL) == MC_ERR_NULL_ARGUMENT, step,
           "NULL runtime not refused", NULL);
    char *answer = mc_runtime_post_event_blocking(NULL, "{}", 0);
    expect(has(answer, "\"status\":\"INVALID_PARAMETER\"") && has(answer, "`rt`"), step,
           "NULL runtime not answered with INVALID_PARAMETER", answer);
    mc_string_free(answer);
    expect(mc_runtime_add_listener(NULL, on_event, NULL) == 0, step, "NULL runtime not refused",
           NULL);
    mc_runtime_free(NULL);
    mc_string_free(NULL);
    printf("ok misuse\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <server-url> <store-directory>\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    const char *store = argv[2];
    char request[4096];
    printf("mc_runtime %s\n", mc_version());
    misuse();

    mc_runtime *rt = new_runtime("new", url, store);
    struct seen seen = {.events = 0};
    pthread_mutex_init(&seen.lock, NULL);
    uint64_t listener = mc_runtime_add_listener(rt, on_event, &seen);
    expect(listener != 0, "listener", "mc_runtime_add_listener failed", NULL);

    char *json = post_and_wait(rt, "start", "{\"type\":\"StartEvent\",\"appName\":\"lifecycle.c\"}");
    expect(has(json, "\"type\":\"StartResultEvent\"") && has(json, "\"status\":\"OK\"") &&
               has(json, "\"sdkState\":\"ACTIVATION_REQUIRED\""),
           "start", "expected OK and ACTIVATION_REQUIRED", json);
    free(json);
    printf("ok start ACTIVATION_REQUIRED\n");

    json = post_and_wait(rt, "enroll",
                         "{\"type\":\"EnrollAnonymousUserEvent\",\"requestId\":\"c-enroll\","
                         "\"tenantId\":\"" TENANT "\",\"authenticationMode\":\"NO\","
                         "\"clientId\":\"" CLIENT "\"}");
    expect(has(json, "\"type\":\"StatusResultEvent\"") && has(json, "\"status\":\"OK\"") &&
               has(json, "\"requestId\":\"c-enroll\""),
           "enroll", "expected a StatusResultEvent OK with our requestId", json);
    free(json);
    expect(seen_claims(&seen) > 0, "enroll", "the listener got no LoginTokenClaimsAvailableEvent",
           NULL);
    printf("ok enroll NO (listener saw LoginTokenClaimsAvailableEvent)\n");

    json = post_blocking(rt, "exchange",
                         "{\"type\":\"ExchangeIamTokenEvent\",\"audience\":\"" AUDIENCE "\"}");
    expect(has(json, "\"status\":\"OK\"") && has(json, "\"token\":\"ey") &&
               has(json, "\"audience\":\"" AUDIENCE "\""),
           "exchange", "expected an IAM token for the audience", json);
    mc_string_free(json);
    printf("ok exchange " AUDIENCE "\n");

    snprintf(request, sizeof request,
             "{\"type\":\"CreateHttpCommonRequest\",\"fullUrl\":\"%s/demo/echo\",\"method\":\"GET\","
             "\"audience\":\"" AUDIENCE "\"}",
             url);
    json = post_blocking(rt, "http", request);
    expect(has(json, "\"status\":\"success\"") && has(json, "\"httpStatus\":200"), "http",
           "expected the echo resource to accept the IAM token", json);
    mc_string_free(json);
    printf("ok http 200\n");

    json = post_and_wait(rt, "invalid", "{\"type\":\"EnrollAnonymousUserEvent\",\"tenantId\":7}");
    expect(has(json, "\"status\":\"INVALID_PARAMETER\"") && has(json, "tenantId"), "invalid",
           "expected INVALID_PARAMETER naming tenantId", json);
    free(json);
    json = post_blocking(rt, "invalid", "not json");
    expect(has(json, "\"status\":\"INVALID_PARAMETER\""), "invalid",
           "expected INVALID_PARAMETER for text that is not JSON", json);
    mc_string_free(json);
    printf("ok invalid requests answered INVALID_PARAMETER\n");

    /* An identified user's login starts with CreateAuthorizationRequestEvent: the runtime
     * answers the login page's URL (the app opens it in the browser) and the request's state. */
    json = post_blocking(rt, "authorize",
                         "{\"type\":\"CreateAuthorizationRequestEvent\",\"tenantId\":\"" TENANT
                         "\",\"clientId\":\"demo-app\","
                         "\"redirectUri\":\"http://127.0.0.1/callback\"}");
    expect(has(json, "\"type\":\"CreateAuthorizationRequestResultEvent\"") &&
               has(json, "\"status\":\"OK\"") &&
               has(json, "\"authorizationUrl\":\"http://127.0.0.1:") && has(json, "\"state\":\""),
           "authorize", "expected OK with the login page's URL and the state", json);
    mc_string_free(json);
    json = post_blocking(rt, "authorize",
                         "{\"type\":\"CreateAuthorizationRequestEvent\",\"tenantId\":\"" TENANT
                         "\",\"clientId\":\"demo-app\"}");
    expect(has(json, "\"status\":\"INVALID_PARAMETER\"") && has(json, "redirectUri"), "authorize",
           "expected INVALID_PARAMETER naming the missing redirectUri", json);
    mc_string_free(json);
    printf("ok CreateAuthorizationRequestEvent answers the login page's URL\n");

    json = post_blocking(rt, "restart", "{\"type\":\"RestartEvent\"}");
    expect(has(json, "\"status\":\"OK\"") && has(json, "\"sdkState\":\"LOGIN_REQUIRED\""),
           "restart", "expected LOGIN_REQUIRED", json);
    mc_string_free(json);
    json = post_blocking(rt, "login", "{\"type\":\"OfflineLoginEvent\"}");
    expect(has(json, "\"type\":\"OfflineLoginResultEvent\"") && has(json, "\"status\":\"OK\""),
           "login", "expected OK", json);
    mc_string_free(json);
    printf("ok restart LOGIN_REQUIRED, offline login OK\n");

    expect(mc_runtime_remove_listener(rt, listener) == MC_OK, "listener",
           "removing the listener failed", NULL);
    expect(mc_runtime_remove_listener(rt, listener) == MC_ERR_UNKNOWN_LISTENER, "listener",
           "a second remove was not refused", NULL);
    pthread_mutex_lock(&seen.lock);
    int events_at_removal = seen.events;
    int status_results = seen.status_results;
    pthread_mutex_unlock(&seen.lock);
    expect(status_results >= 1, "listener", "the listener did not see the enrollment's result",
           NULL);
    json = post_blocking(rt, "listener", "{\"type\":\"GetStateEvent\"}");
    mc_string_free(json);
    pthread_mutex_lock(&seen.lock);
    expect(seen.events == events_at_removal, "listener", "a removed listener was called", NULL);
    pthread_mutex_unlock(&seen.lock);
    printf("ok listener saw %d events, none after removal\n", events_at_removal);
    mc_runtime_free(rt);

    /* A new runtime on the same store finds the enrolled device. */
    rt = new_runtime("reopen", url, store);
    json = post_blocking(rt, "reopen", "{\"type\":\"StartEvent\"}");
    expect(has(json, "\"sdkState\":\"LOGIN_REQUIRED\""), "reopen",
           "expected the stored user (LOGIN_REQUIRED)", json);
    mc_string_free(json);
    json = post_blocking(rt, "reopen", "{\"type\":\"OfflineLoginEvent\"}");
    expect(has(json, "\"status\":\"OK\""), "reopen", "offline login failed", json);
    mc_string_free(json);
    json = post_blocking(rt, "delete", "{\"type\":\"DeleteUserEvent\"}");
    expect(has(json, "\"status\":\"OK\"") && has(json, "\"sdkState\":\"ACTIVATION_REQUIRED\"") &&
               has(json, "\"userList\":[]"),
           "delete", "expected ACTIVATION_REQUIRED and no users", json);
    mc_string_free(json);
    printf("ok reopen LOGIN_REQUIRED, login, delete ACTIVATION_REQUIRED\n");
    mc_runtime_free(rt);
    pthread_mutex_destroy(&seen.lock);

    printf("lifecycle: PASS\n");
    return 0;
}
