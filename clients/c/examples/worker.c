/*
 * worker.c - claims messages from LANE with a long-poll, prints each, and
 * acks it; every third message "fails" and is nacked with a retry in one
 * second instead (after max_attempts failures it becomes a dead letter).
 * Stops after LIMIT messages, or when a whole long-poll found nothing.
 *
 *   worker [URL [LANE [LIMIT]]]       defaults: $HOPPER_URL or
 *                                     tcp://127.0.0.1:7450, "examples", 100
 */
#include <hopper/hopper.h>
#include <stdio.h>
#include <stdlib.h>

static int
fail(const char *what, const hopper_status *st)
{
    fprintf(stderr, "worker: %s: %s %s: %s\n", what,
            hopper_status_str(st->code), st->reason, st->message);
    return 1;
}

/* Pretend to do the work; every third message fails. */
static bool
process(const hopper_message *m, long seen)
{
    printf("got %s attempt %u/%u: %.*s\n", m->id, (unsigned)m->attempts,
           (unsigned)m->max_attempts, (int)m->payload_len,
           (const char *)m->payload);
    return seen % 3 != 0;
}

/* Settles one message; a lost claim (the lease ran out and someone else
 * has it) is not an error for this worker, just skipped. */
static int
settle(hopper_client *c, const hopper_message *m, bool ok)
{
    hopper_nack_opts nack = { 0 };
    hopper_nack_result res;
    hopper_status st;
    int code;

    if (ok) {
        code = hopper_ack1(c, m->id, &m->token, &st);
    } else {
        nack.error = "simulated failure";
        nack.retry_in_ms = 1000;
        code = hopper_nack(c, m->id, &m->token, &nack, &res, &st);
        if (code == HOPPER_OK) {
            printf("  nacked%s\n", res.dead ? ": now a dead letter" : "");
        }
    }
    if (code == HOPPER_FAILED_PRECONDITION) {
        fprintf(stderr, "worker: %s: %s, skipped\n", m->id, st.reason);
        return 0;
    }
    return code == HOPPER_OK ? 0 : fail(ok ? "ack" : "nack", &st);
}

int
main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : getenv("HOPPER_URL");
    const char *lane = argc > 2 ? argv[2] : "examples";
    long limit = argc > 3 ? strtol(argv[3], NULL, 10) : 100;
    hopper_claim_opts o = { 0 };
    hopper_client *c;
    hopper_status st;
    long seen = 0;
    int rc = 0;

    if (hopper_connect(url, NULL, &c, &st) != HOPPER_OK) {
        return fail("connect", &st);
    }
    o.max = 10;
    o.lease_ms = 30000;
    o.wait_ms = 2000; /* long-poll: the call itself waits for work */
    o.consumer = "example-worker";
    while (rc == 0 && seen < limit) {
        hopper_batch *b;

        if (hopper_claim(c, lane, &o, &b, &st) != HOPPER_OK) {
            rc = fail("claim", &st);
            break;
        }
        if (b->n == 0) {
            printf("idle for %u ms, stopping\n", (unsigned)o.wait_ms);
            hopper_batch_free(b);
            break;
        }
        for (size_t i = 0; i < b->n && rc == 0; i++) {
            seen++;
            rc = settle(c, &b->msgs[i], process(&b->msgs[i], seen));
        }
        hopper_batch_free(b);
    }
    hopper_close(c);
    return rc;
}
