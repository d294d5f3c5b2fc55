/*
 * turn_stats.h - turnd's push of its metrics to queued (STATS verb).
 *
 * turnd counts ATRN replies, failed AUTHs, delivery outcomes of reversed
 * sessions and open ODMR sessions in its own process (common/metrics.h);
 * queued serves /metrics.  Every TURN_STATS_PERIOD seconds, and once at
 * shutdown, turnd sends queued's control socket one line
 * "STATS sessions_odmr=N name=delta ..." with what changed since the last
 * push queued acknowledged with "OK".  When queued cannot be reached the
 * deltas simply stay for the next try.  One pusher per process.
 */
#ifndef HM_TURN_STATS_H
#define HM_TURN_STATS_H

#include <stdbool.h>

struct event_base;

#define TURN_STATS_PERIOD   5   /* seconds between pushes */
#define TURN_STATS_TIMEOUT  5   /* seconds one push may take */
#define TURN_STATS_LINE_MAX 500 /* request line incl. "STATS " (queued: 512) */

/* turn_stats_start - push every TURN_STATS_PERIOD seconds to <state_dir>/control. */
bool turn_stats_start(struct event_base *base, const char *state_dir);
/* turn_stats_flush - after the event loop ended: one last push, waiting up to 2 seconds. */
void turn_stats_flush(void);
/* turn_stats_stop - drop any push in flight and free the pusher. */
void turn_stats_stop(void);

#endif
