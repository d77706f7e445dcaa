/*
 * producer.c - enqueues COUNT messages into LANE in one atomic batch, the
 * first with a dedupe key, then enqueues that first draft again to show
 * that a retried producer never doubles a message.
 *
 *   producer [URL [LANE [COUNT]]]     defaults: $HOPPER_URL or
 *                                     tcp://127.0.0.1:7450, "examples", 5
 */
#include <hopper/hopper.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COUNT 1000

static int
fail(const char *what, const hopper_status *st)
{
    fprintf(stderr, "producer: %s: %s %s: %s\n", what,
            hopper_status_str(st->code), st->reason, st->message);
    return 1;
}

int
main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : getenv("HOPPER_URL");
    const char *lane = argc > 2 ? argv[2] : "examples";
    long count = argc > 3 ? strtol(argv[3], NULL, 10) : 5;
    static char bodies[MAX_COUNT][64];
    static hopper_draft drafts[MAX_COUNT];
    static hopper_enqueued ids[MAX_COUNT];
    const hopper_header header = { "content-type", "text/plain" };
    hopper_client *c;
    hopper_status st;
    hopper_enqueued again;

    if (count < 1 || count > MAX_COUNT) {
        fprintf(stderr, "usage: producer [URL [LANE [COUNT 1-%d]]]\n",
                MAX_COUNT);
        return 2;
    }
    /* Connecting never blocks: a broker that is down shows up as
     * UNAVAILABLE on the first call. */
    if (hopper_connect(url, NULL, &c, &st) != HOPPER_OK) {
        return fail("connect", &st);
    }
    for (long i = 0; i < count; i++) {
        int n = snprintf(bodies[i], sizeof(bodies[i]), "order %ld", i + 1);

        memset(&drafts[i], 0, sizeof(drafts[i]));
        drafts[i].lane = lane;
        drafts[i].payload = bodies[i];
        drafts[i].payload_len = (size_t)n;
        drafts[i].headers = &header;
        drafts[i].n_headers = 1;
    }
    drafts[0].dedupe_key = "order-1"; /* retries of this one are no-ops */

    /* All or nothing: either every draft is stored or none is. */
    if (hopper_enqueue(c, drafts, (size_t)count, ids, &st) != HOPPER_OK) {
        hopper_close(c);
        return fail("enqueue", &st);
    }
    for (long i = 0; i < count; i++) {
        printf("enqueued %s%s\n", ids[i].id,
               ids[i].duplicate ? " (duplicate)" : "");
    }

    /* The same dedupe key again: the first message's id comes back. */
    if (hopper_enqueue(c, &drafts[0], 1, &again, &st) != HOPPER_OK) {
        hopper_close(c);
        return fail("enqueue again", &st);
    }
    printf("again    %s%s\n", again.id,
           again.duplicate ? " (duplicate: nothing new enqueued)" : "");
    hopper_close(c);
    return 0;
}
