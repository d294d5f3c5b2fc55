/*
 * smtpd_limits.c - placeholder until the SMTP server lands: checks a text line
 * length against RFC 5321 limits.
 */
#include "smtpd.h"

#include <stdbool.h>
#include <stddef.h>

bool smtpd_text_line_ok(size_t len_with_crlf);

/* smtpd_text_line_ok - true when a DATA line fits RFC 5321 4.5.3.1.6. */
bool smtpd_text_line_ok(size_t len_with_crlf)
{
    return len_with_crlf <= SMTPD_TEXT_MAX;
}
