/*
 * supervise.h - queued starts and supervises turnd (implemented in
 * queued/supervise.c by the turnd owner).
 *
 * queued calls supervise_turnd_start() once after its event loop exists
 * when the configuration says start_turnd = yes, and supervise_turnd_stop()
 * on the way out.  cf and conf_path must stay valid until the stop.
 */
#ifndef HM_SUPERVISE_H
#define HM_SUPERVISE_H

struct event_base;
struct conf;

/* supervise_turnd_start - fork/exec turnd and restart it when it dies. */
void supervise_turnd_start(struct event_base *base, const struct conf *cf, const char *argv0,
                           const char *conf_path);
/* supervise_turnd_reload - pass a configuration reload on to turnd (SIGHUP). */
void supervise_turnd_reload(void);
/* supervise_turnd_stop - stop supervising and terminate turnd. */
void supervise_turnd_stop(void);

#endif
