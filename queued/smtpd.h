/*
 * smtpd.h - queued's SMTP server side (ingress of held mail, ETRN).
 */
#ifndef HM_SMTPD_H
#define HM_SMTPD_H

#define SMTPD_LINE_MAX 512   /* RFC 5321 4.5.3.1.4 command line incl. CRLF */
#define SMTPD_TEXT_MAX 1000  /* RFC 5321 4.5.3.1.6 text line incl. CRLF */

#endif
