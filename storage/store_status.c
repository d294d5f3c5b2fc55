/*
 * store_status.c - status texts and queue id formatting.
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* store_strerror - a short English text for a status. */
const char *store_strerror(int status)
{
    switch (status) {
    case STORE_OK:
        return "success";
    case STORE_NOTFOUND:
        return "not found";
    case STORE_EXISTS:
        return "already exists";
    case STORE_NOTEMPTY:
        return "still holds mail";
    case STORE_FULL:
        return "queue storage full";
    case STORE_LIMIT:
        return "queue limit reached";
    case STORE_BUSY:
        return "leased by another process";
    case STORE_INVAL:
        return "invalid argument";
    case STORE_VERSION:
        return "queue written by a newer holdmx version";
    case STORE_CORRUPT:
        return "queue data corrupt";
    case STORE_IO:
        return "queue storage error";
    default:
        return "unknown status";
    }
}

/* store_id_format - queue id text: upper-case hex, at least 10 digits. */
char *store_id_format(store_msgid_t id, char buf[STORE_ID_LEN])
{
    snprintf(buf, STORE_ID_LEN, "%010" PRIX64, id);
    return buf;
}

/* store_id_parse - inverse of store_id_format. */
bool store_id_parse(const char *s, store_msgid_t *id)
{
    char *end;
    size_t len = strlen(s);

    if (len == 0 || len > 16 || strspn(s, "0123456789ABCDEFabcdef") != len)
        return false;
    *id = strtoull(s, &end, 16);
    return *end == '\0';
}

/* store_rcpt_state_name - "held", "leased", "delivered", "failed". */
const char *store_rcpt_state_name(int state)
{
    static const char *names[] = {"held", "leased", "delivered", "failed"};

    if (state < 0 || state > STORE_RCPT_FAILED)
        return "unknown";
    return names[state];
}
