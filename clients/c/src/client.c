/*
 * client.c - creating and closing a client. Nothing is dialled here: the
 * URL and the TLS settings are checked at once (so a typo fails now, not
 * at the first call), and connections are made by the calls that need
 * them, so creating a client never fails because the broker is down.
 */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

void
hopper_options_init(hopper_options *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = HC_DEFAULT_TIMEOUT_MS;
}

static char *
dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static void
client_free(hopper_client *c)
{
    hc_target_release(c);
    while (c->idle != NULL) {
        hc_conn *k = c->idle;
        c->idle = k->next;
        hc_conn_close(k);
    }
    free(c->url);
    if (c->token != NULL) {
        /* The credential should not linger in freed memory. */
        volatile char *p = c->token;
        while (*p != '\0') {
            *p++ = '\0';
        }
    }
    free(c->token);
    free(c->scope);
    pthread_mutex_destroy(&c->mtx);
    pthread_mutex_destroy(&c->async_once);
    free(c);
}

int
hopper_connect(const char *url, const hopper_options *o, hopper_client **out,
               hopper_status *st)
{
    hopper_options defaults;
    hopper_client *c;
    int code;

    if (out == NULL) {
        return hc_bad_arg(st, "out must not be NULL");
    }
    *out = NULL;
    if (o == NULL) {
        hopper_options_init(&defaults);
        o = &defaults;
    }
    if (url != NULL && url[0] == '\0') {
        /* An empty URL is a mistake (an unset variable), not a request for
         * the default broker: talking to whatever listens on 7450 would
         * hide it. */
        return hc_fail(st, HOPPER_INVALID_ARGUMENT, HOPPER_R_BAD_URL,
                       "the broker URL is empty; give tcp://HOST:PORT");
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return hc_no_memory(st);
    }
    pthread_mutex_init(&c->mtx, NULL);
    pthread_mutex_init(&c->async_once, NULL);
    c->url = dup_or_empty(url != NULL ? url : HOPPER_DEFAULT_URL);
    c->token = dup_or_empty(o->token);
    c->scope = dup_or_empty(o->scope);
    c->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : HC_DEFAULT_TIMEOUT_MS;
    c->max_reply = o->max_response_bytes != 0 ? o->max_response_bytes
                                              : HC_DEFAULT_MAX_REPLY;
    if (c->url == NULL || c->token == NULL || c->scope == NULL) {
        code = hc_no_memory(st);
        goto free_client;
    }
    if ((code = hc_reqid_seed(c, st)) != HOPPER_OK ||
        (code = hc_target_init(c, o, st)) != HOPPER_OK) {
        goto free_client;
    }
    *out = c;
    return HOPPER_OK;

free_client:
    client_free(c);
    return code;
}

void
hopper_close(hopper_client *c)
{
    if (c == NULL) {
        return;
    }
    hc_async_close(c);
    client_free(c);
}

void
hopper_free(void *p)
{
    free(p);
}
