/*
 * fuzz_smtpd.c - fuzz target for queued's SMTP server: command framing,
 * the command table and its gates, HELO/EHLO, MAIL/RCPT path and parameter
 * parsing (smtpd_path_parse, xtext, SIZE/BODY/RET/ENVID/NOTIFY/ORCPT), RSET,
 * VRFY, ETRN without an engine, DATA with dot-unstuffing and the group
 * commit into a real LMDB queue.
 *
 * Each input is a client's side of one session.  It is fed line by line
 * (each piece ends at a LF) through a real AF_UNIX socket pair into a real
 * smtpd session on a private event base, running the loop between pieces
 * so pipelining gates see a well-behaved client; then the client half-
 * closes and the session must end within a bounded number of loop passes.
 * Checked: no crash/leak/UB (sanitizers), every reply line is "ddd" + ' '
 * or '-' and ends in CRLF, and the session always goes away.  The server,
 * configuration and store are created once (temp directory, domain
 * example.org held on site default, under $TMPDIR or /tmp) and live for
 * the whole process; messages committed by earlier inputs stay queued.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "smtpd.h"
#include "store.h"

#include "fuzz_common.h"

#define FUZZ_SMTPD_PASSES 8    /* loop passes after each piece */
#define FUZZ_SMTPD_END    7000 /* loop passes (~7 s; a closing session waits <= 5 s) */
#define FUZZ_SMTPD_INPUT  (48 * 1024)

/* fuzz_smtpd_env - the long-lived server the sessions run against. */
struct fuzz_smtpd_env {
    char dir[256];
    struct conf cf;
    struct store *st;
    struct event_base *base;
    struct smtpd *sd;
    struct evbuffer *replies; /* server output not yet checked */
};

static struct fuzz_smtpd_env fse;

/* fuzz_smtpd_rm - nftw callback removing one entry. */
static int fuzz_smtpd_rm(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* fuzz_smtpd_teardown - free the server and remove the temp directory (atexit). */
static void fuzz_smtpd_teardown(void)
{
    smtpd_free(fse.sd);
    fse.sd = NULL;
    store_close(fse.st);
    conf_free(&fse.cf);
    evbuffer_free(fse.replies);
    event_base_free(fse.base);
    nftw(fse.dir, fuzz_smtpd_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* fuzz_smtpd_setup - temp dir, configuration, store with one held domain, server. */
static void fuzz_smtpd_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[512], err[256];
    struct store_opts so = {0};
    struct store_domain d = {0};
    FILE *f;

    log_open("fuzz_smtpd", true);
    snprintf(fse.dir, sizeof(fse.dir), "%s/hm-fuzz-smtpd.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    fuzz_assert(mkdtemp(fse.dir) != NULL);
    snprintf(path, sizeof(path), "%s/holdmx.conf", fse.dir);
    f = fopen(path, "w");
    fuzz_assert(f != NULL);
    fprintf(f,
            "state_dir = %s\nmax_message_size = 4k\nmax_recipients = 5\n"
            "start_turnd = no\n[site default]\nhostname = fuzz.example\n"
            "smtp_listen = 127.0.0.1:9\n",
            fse.dir);
    fclose(f);
    fuzz_assert(conf_load(path, &fse.cf, stderr) == 0);
    so.dir = fse.dir;
    so.map_size = 16u << 20;
    so.map_size_max = 64u << 20;
    fuzz_assert(store_open(&fse.st, &so, err, sizeof(err)) == 0);
    snprintf(d.name, sizeof(d.name), "example.org");
    snprintf(d.site, sizeof(d.site), "default");
    d.etrn_enabled = true;
    d.hold_time = -1;
    d.delay_warning = -1;
    fuzz_assert(store_domain_put(fse.st, &d, false) == 0);
    fse.base = event_base_new();
    fuzz_assert(fse.base != NULL);
    fse.sd = smtpd_new(fse.base, fse.st, NULL, &fse.cf, err, sizeof(err));
    fuzz_assert(fse.sd != NULL);
    fse.replies = evbuffer_new();
    atexit(fuzz_smtpd_teardown);
}

/* fuzz_smtpd_check_replies - every complete reply line is well formed. */
static void fuzz_smtpd_check_replies(void)
{
    size_t n;
    char *line;

    while ((line = evbuffer_readln(fse.replies, &n, EVBUFFER_EOL_LF)) != NULL) {
        fuzz_assert(n >= 5 && line[n - 1] == '\r');
        fuzz_assert(line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
                    line[2] >= '0' && line[2] <= '9');
        fuzz_assert(line[3] == ' ' || line[3] == '-');
        fuzz_assert(memchr(line, '\0', n) == NULL);
        free(line);
    }
}

/* fuzz_smtpd_pump - run the loop passes times, collecting what the server said. */
static void fuzz_smtpd_pump(int fd, int passes)
{
    char buf[4096];
    ssize_t n;
    int i;

    for (i = 0; i < passes; i++) {
        event_base_loop(fse.base, EVLOOP_NONBLOCK);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            evbuffer_add(fse.replies, buf, (size_t)n);
    }
    fuzz_smtpd_check_replies();
}

/* fuzz_smtpd_send - write one piece, pumping while the socket is full. */
static void fuzz_smtpd_send(int fd, const uint8_t *p, size_t n)
{
    int tries = 0;

    while (n > 0 && tries++ < 1000) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return; /* the server closed: the rest is never read */
        }
        fuzz_smtpd_pump(fd, FUZZ_SMTPD_PASSES);
    }
}

/* LLVMFuzzerTestOneInput - one SMTP session whose client says data[]. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in sin = {0};
    size_t off = 0;
    int sv[2], i;

    if (fse.sd == NULL)
        fuzz_smtpd_setup();
    if (size > FUZZ_SMTPD_INPUT)
        return 0;
    fuzz_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fuzz_assert(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
    fuzz_assert(evutil_make_socket_nonblocking(sv[0]) == 0);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    evbuffer_drain(fse.replies, evbuffer_get_length(fse.replies));
    smtpd_accept(fse.sd, "default", sv[0], (struct sockaddr *)&sin, sizeof(sin));
    fuzz_smtpd_pump(sv[1], FUZZ_SMTPD_PASSES);
    while (off < size) {
        const uint8_t *lf = memchr(data + off, '\n', size - off);
        size_t piece = lf != NULL ? (size_t)(lf - (data + off)) + 1 : size - off;

        fuzz_smtpd_send(sv[1], data + off, piece);
        off += piece;
    }
    shutdown(sv[1], SHUT_WR);
    for (i = 0; i < FUZZ_SMTPD_END && smtpd_session_count(fse.sd) > 0; i++) {
        fuzz_smtpd_pump(sv[1], 1);
        if (i > 100)
            usleep(1000); /* a closing session polls every 50 ms */
    }
    fuzz_assert(smtpd_session_count(fse.sd) == 0);
    close(sv[1]);
    return 0;
}

static const char *const fuzz_smtpd_seeds[] FUZZ_SEEDS = {
    "EHLO client.example\r\nMAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME RET=HDRS "
    "ENVID=x+2By\r\nRCPT TO:<u@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u+40example.org\r\n"
    "DATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
    "HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<@r.example:u@example.org>\r\nRSET\r\nVRFY u\r\n"
    "ETRN example.org\r\nNOOP\r\nHELP\r\nQUIT\r\n",
    "MAIL FROM:<a@b>\r\nEHLO\r\nEHLO a b\r\nXYZZY\r\nSTARTTLS\r\n",
    "EHLO x\r\nMAIL FROM:<a@b> SIZE=99999999999999999999\r\nMAIL FROM:<a@b> FOO=bar\r\n"
    "RCPT TO:<nobody@elsewhere.example>\r\nDATA\r\n",
    "EHLO x\r\nMAIL FROM:<\"q\\\"x\"@b.example>\r\nRCPT TO:<u@example.org> NOTIFY=NEVER,SUCCESS\r\n"
    "RCPT TO:<u@example.org> ORCPT=bad\r\nRCPT TO:<U@EXAMPLE.ORG>\r\nDATA\r\nbare\nlf\r\n.\r\n",
};

FUZZ_MAIN(fuzz_smtpd_seeds)
