/*
 * turn_penalty.c - failed AUTH slows down, per client address.
 *
 * A small fixed table remembers recent failures per address: the delay
 * before a 535 is 1 s for the first failure and doubles with each further
 * one (capped at TURN_PENALTY_MAX_DELAY).  An entry forgets its failures
 * TURN_PENALTY_EXPIRY seconds after the last one.  When the table is full
 * the oldest entry is reused, so memory stays bounded whatever the clients
 * do.  The delay itself is a timer in the session: the event loop never
 * sleeps.
 */
#include "turnd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define TURN_PENALTY_SLOTS     1024
#define TURN_PENALTY_EXPIRY    900
#define TURN_PENALTY_MAX_DELAY 16

struct turn_penalty_slot {
    char ip[64];
    unsigned fails;
    int64_t last;
};

struct turn_penalty {
    struct turn_penalty_slot slot[TURN_PENALTY_SLOTS];
};

/* turn_penalty_new - empty table. */
struct turn_penalty *turn_penalty_new(void)
{
    return xcalloc(1, sizeof(struct turn_penalty));
}

/* turn_penalty_free - release the table. */
void turn_penalty_free(struct turn_penalty *p)
{
    free(p);
}

/* turn_penalty_find - the slot of ip, or NULL; expired slots are cleared. */
static struct turn_penalty_slot *turn_penalty_find(struct turn_penalty *p, const char *ip,
                                                   int64_t now)
{
    for (size_t i = 0; i < TURN_PENALTY_SLOTS; i++) {
        struct turn_penalty_slot *s = &p->slot[i];

        if (s->fails > 0 && now - s->last > TURN_PENALTY_EXPIRY)
            memset(s, 0, sizeof(*s));
        if (s->fails > 0 && strcmp(s->ip, ip) == 0)
            return s;
    }
    return NULL;
}

/* turn_penalty_grab - a free slot, else the least recently used one. */
static struct turn_penalty_slot *turn_penalty_grab(struct turn_penalty *p)
{
    struct turn_penalty_slot *old = &p->slot[0];

    for (size_t i = 0; i < TURN_PENALTY_SLOTS; i++) {
        if (p->slot[i].fails == 0)
            return &p->slot[i];
        if (p->slot[i].last < old->last)
            old = &p->slot[i];
    }
    memset(old, 0, sizeof(*old));
    return old;
}

/* turn_penalty_delay_of - delay for the n-th failure: 1, 2, 4, ... capped. */
static int turn_penalty_delay_of(unsigned n)
{
    if (n == 0)
        return 0;
    if (n > 5)
        return TURN_PENALTY_MAX_DELAY;
    return (1 << (n - 1)) > TURN_PENALTY_MAX_DELAY ? TURN_PENALTY_MAX_DELAY : (1 << (n - 1));
}

/* turn_penalty_fail - record one failure of ip; returns the delay to apply. */
int turn_penalty_fail(struct turn_penalty *p, const char *ip, int64_t now)
{
    struct turn_penalty_slot *s = turn_penalty_find(p, ip, now);

    if (s == NULL) {
        s = turn_penalty_grab(p);
        snprintf(s->ip, sizeof(s->ip), "%s", ip);
    }
    if (s->fails < 1000)
        s->fails++;
    s->last = now;
    return turn_penalty_delay_of(s->fails);
}

/* turn_penalty_peek - the delay the next failure of ip would get. */
int turn_penalty_peek(struct turn_penalty *p, const char *ip, int64_t now)
{
    struct turn_penalty_slot *s = turn_penalty_find(p, ip, now);

    return turn_penalty_delay_of(s != NULL ? s->fails + 1 : 1);
}
