/*
 * turnd.h - the ODMR (RFC 2645) and authenticated TURN front end.
 */
#ifndef HM_TURND_H
#define HM_TURND_H

#define TURN_ODMR_LINE_MAX 8192 /* ATRN with many domains exceeds 512 */

#endif
