/*
 * dlv_opts.c - default options of the SMTP client engine (RFC 5321 4.5.3.2).
 */
#include "dlv.h"

#include <string.h>

/* dlv_opts_default - RFC 5321 client timeouts, no TLS, no total limit. */
void dlv_opts_default(struct dlv_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->helo_name = "localhost";
    o->greeting_timeout = 300;
    o->command_timeout = 300;
    o->data_init_timeout = 120;
    o->data_block_timeout = 180;
    o->data_term_timeout = 600;
}
