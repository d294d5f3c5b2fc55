/*
 * odmr-customer.c - a small ODMR (RFC 2645) customer for the drain benchmark.
 *
 * usage: odmr-customer [-H host] [-p port] -u user [-P passfile] [-m CRAM-MD5|PLAIN]
 *                      [-t timeout] [-q] domain[,domain...]
 *
 * Connects to turnd, says EHLO, authenticates (CRAM-MD5 by default, or
 * PLAIN), sends "ATRN <domains>", and on 250 turns the connection around:
 * it becomes a discarding SMTP server that sends 220, accepts every
 * MAIL/RCPT/DATA, counts messages and bytes and answers QUIT.  At the end
 * it prints "messages=N bytes=B elapsed=S rate=R msg/s (M MiB/s)".  The
 * password comes from -P FILE (first line) or the environment variable
 * ODMR_PASSWORD; it is never printed.  Every socket operation has a
 * timeout (-t, default 300 s).  Exit: 0 reversed and finished with QUIT,
 * 1 = 453 no mail, 2 = other error, 3 = AUTH failed.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OC_BUF  65536
#define OC_LINE 8192

struct oc_conn {
    int fd;
    char buf[OC_BUF];
    size_t len; /* bytes in buf */
    size_t off; /* consumed */
};

struct oc_opts {
    const char *host, *port, *user, *passfile, *mech, *domains;
    int timeout;
    bool quiet;
};

/* oc_die - print a reason and exit with code. */
static void oc_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void oc_die(int code, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "odmr-customer: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

/* oc_connect - TCP connection with send/receive timeouts. */
static int oc_connect(const struct oc_opts *o)
{
    struct addrinfo hints, *res, *ai;
    struct timeval tv = {o->timeout, 0};
    int fd = -1, one = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(o->host, o->port, &hints, &res) != 0)
        oc_die(2, "cannot resolve %s", o->host);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        oc_die(2, "cannot connect to %s", o->host);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* oc_send - write all of s or die. */
static void oc_send(struct oc_conn *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);

        if (w <= 0)
            oc_die(2, "send: %s", strerror(errno));
        s += w;
        n -= (size_t)w;
    }
}

/* oc_sendstr - oc_send of a C string. */
static void oc_sendstr(struct oc_conn *c, const char *s)
{
    oc_send(c, s, strlen(s));
}

/* oc_line - next line (with its LF) into out; returns its length, 0 at EOF. */
static size_t oc_line(struct oc_conn *c, char *out, size_t outlen)
{
    size_t n = 0;

    for (;;) {
        while (c->off < c->len) {
            char ch = c->buf[c->off++];

            if (n + 1 < outlen)
                out[n++] = ch;
            if (ch == '\n') {
                out[n] = '\0';
                return n;
            }
        }
        ssize_t r = recv(c->fd, c->buf, sizeof(c->buf), 0);

        if (r <= 0) {
            out[n] = '\0';
            return 0;
        }
        c->len = (size_t)r;
        c->off = 0;
    }
}

/* oc_reply - read one (multi-line) reply; returns the code, last line in last. */
static int oc_reply(struct oc_conn *c, char *last, size_t lastlen)
{
    for (int i = 0; i < 1000; i++) {
        if (oc_line(c, last, lastlen) == 0)
            oc_die(2, "%s", "connection closed by the provider");
        if (strlen(last) < 4 || last[3] != '-')
            return atoi(last);
    }
    oc_die(2, "%s", "reply too long");
    return 0;
}

/* oc_password - first line of the file, or $ODMR_PASSWORD. */
static char *oc_password(const char *file)
{
    static char pw[512];
    FILE *fp;

    if (file == NULL) {
        const char *e = getenv("ODMR_PASSWORD");

        if (e == NULL)
            oc_die(2, "%s", "no password: use -P FILE or ODMR_PASSWORD");
        snprintf(pw, sizeof(pw), "%s", e);
        return pw;
    }
    fp = fopen(file, "r");
    if (fp == NULL || fgets(pw, sizeof(pw), fp) == NULL)
        oc_die(2, "cannot read password file %s", file);
    fclose(fp);
    pw[strcspn(pw, "\r\n")] = '\0';
    return pw;
}

/* oc_b64 - base64 of n bytes into out (size >= 4*(n+2)/3+1). */
static void oc_b64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* oc_auth_cram - AUTH CRAM-MD5: HMAC-MD5 of the challenge with the password. */
static int oc_auth_cram(struct oc_conn *c, const char *user, const char *pw, char *line)
{
    unsigned char chal[OC_LINE], mac[64];
    char resp[1024], hex[64 * 2 + 1], b64[OC_LINE];
    size_t maclen = 0, len;
    int n;

    oc_sendstr(c, "AUTH CRAM-MD5\r\n");
    if (oc_reply(c, line, OC_LINE) != 334)
        return atoi(line);
    line[strcspn(line, "\r\n")] = '\0';
    len = strlen(line + 4);
    n = EVP_DecodeBlock(chal, (const unsigned char *)line + 4, (int)len);
    if (n < 0)
        oc_die(2, "%s", "undecodable CRAM-MD5 challenge");
    /* EVP_DecodeBlock counts the padding as zero bytes: take them off */
    n -= (len > 0 && line[4 + len - 1] == '=') + (len > 1 && line[4 + len - 2] == '=');
    if (EVP_Q_mac(NULL, "HMAC", NULL, "MD5", NULL, pw, strlen(pw), chal, (size_t)n, mac,
                  sizeof(mac), &maclen) == NULL)
        oc_die(2, "%s", "HMAC-MD5 failed");
    for (size_t i = 0; i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    snprintf(resp, sizeof(resp), "%s %s", user, hex);
    oc_b64((unsigned char *)resp, strlen(resp), b64);
    oc_sendstr(c, b64);
    oc_sendstr(c, "\r\n");
    return oc_reply(c, line, OC_LINE);
}

/* oc_auth_plain - AUTH PLAIN with the initial response. */
static int oc_auth_plain(struct oc_conn *c, const char *user, const char *pw, char *line)
{
    char raw[1100], b64[1600];
    size_t ul = strlen(user), pl = strlen(pw);

    if (ul + pl + 2 > sizeof(raw))
        oc_die(2, "%s", "user or password too long");
    raw[0] = '\0';
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = '\0';
    memcpy(raw + 2 + ul, pw, pl);
    oc_b64((unsigned char *)raw, ul + pl + 2, b64);
    oc_sendstr(c, "AUTH PLAIN ");
    oc_sendstr(c, b64);
    oc_sendstr(c, "\r\n");
    return oc_reply(c, line, OC_LINE);
}

/* oc_now - monotonic seconds. */
static double oc_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* oc_data - swallow one message up to "."; returns its unstuffed size. */
static unsigned long long oc_data(struct oc_conn *c, char *line)
{
    unsigned long long bytes = 0;
    size_t n;

    while ((n = oc_line(c, line, OC_LINE)) > 0) {
        if (strcmp(line, ".\r\n") == 0)
            return bytes;
        bytes += n - (line[0] == '.' ? 1 : 0);
    }
    oc_die(2, "%s", "connection lost during DATA");
    return 0;
}

/* oc_serve - the reversed session: discard everything, count, stop at QUIT. */
static int oc_serve(struct oc_conn *c, const struct oc_opts *o)
{
    char line[OC_LINE];
    unsigned long long msgs = 0, bytes = 0;
    double t0 = oc_now(), dt;

    oc_sendstr(c, "220 customer.invalid ESMTP odmr-customer\r\n");
    while (oc_line(c, line, sizeof(line)) > 0) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            oc_sendstr(c, "250-customer.invalid\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE\r\n");
        } else if (strncasecmp(line, "HELO", 4) == 0) {
            oc_sendstr(c, "250 customer.invalid\r\n");
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            oc_sendstr(c, "354 go ahead\r\n");
            bytes += oc_data(c, line);
            msgs++;
            oc_sendstr(c, "250 2.0.0 Ok\r\n");
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            oc_sendstr(c, "221 2.0.0 Bye\r\n");
            dt = oc_now() - t0;
            printf("messages=%llu bytes=%llu elapsed=%.3f rate=%.1f msg/s (%.2f MiB/s)\n", msgs,
                   bytes, dt, dt > 0 ? (double)msgs / dt : 0.0,
                   dt > 0 ? (double)bytes / dt / 1048576.0 : 0.0);
            return 0;
        } else {
            oc_sendstr(c, "250 2.0.0 Ok\r\n"); /* MAIL, RCPT, RSET, NOOP */
        }
    }
    if (!o->quiet)
        fprintf(stderr, "odmr-customer: provider closed without QUIT after %llu message(s)\n",
                msgs);
    return 2;
}

/* oc_usage - synopsis. */
static void oc_usage(void)
{
    fprintf(stderr, "usage: odmr-customer [-H host] [-p port] -u user [-P passfile] "
                    "[-m CRAM-MD5|PLAIN] [-t timeout] [-q] domain[,domain...]\n");
    exit(2);
}

/* oc_args - command line into o. */
static void oc_args(int argc, char **argv, struct oc_opts *o)
{
    int ch;

    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = "366";
    o->mech = "CRAM-MD5";
    o->timeout = 300;
    while ((ch = getopt(argc, argv, "H:p:u:P:m:t:qh")) != -1) {
        switch (ch) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            o->port = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'P':
            o->passfile = optarg;
            break;
        case 'm':
            o->mech = optarg;
            break;
        case 't':
            o->timeout = atoi(optarg);
            break;
        case 'q':
            o->quiet = true;
            break;
        default:
            oc_usage();
        }
    }
    if (o->user == NULL || optind != argc - 1 || o->timeout <= 0)
        oc_usage();
    o->domains = argv[optind];
}

/* main - EHLO, AUTH, ATRN, then serve. */
int main(int argc, char **argv)
{
    struct oc_opts o;
    struct oc_conn *c = calloc(1, sizeof(*c));
    char line[OC_LINE], cmd[OC_LINE];
    const char *pw;
    int code;

    oc_args(argc, argv, &o);
    pw = oc_password(o.passfile);
    if (c == NULL)
        oc_die(2, "%s", "out of memory");
    c->fd = oc_connect(&o);
    if (oc_reply(c, line, sizeof(line)) != 220)
        oc_die(2, "greeting: %s", line);
    oc_sendstr(c, "EHLO customer.invalid\r\n");
    if (oc_reply(c, line, sizeof(line)) != 250)
        oc_die(2, "EHLO: %s", line);
    code = strcasecmp(o.mech, "PLAIN") == 0 ? oc_auth_plain(c, o.user, pw, line)
                                            : oc_auth_cram(c, o.user, pw, line);
    if (code != 235)
        oc_die(3, "AUTH failed: %s", line);
    snprintf(cmd, sizeof(cmd), "ATRN %s\r\n", o.domains);
    oc_sendstr(c, cmd);
    code = oc_reply(c, line, sizeof(line));
    if (code == 453) {
        if (!o.quiet)
            printf("no mail: %s", line);
        close(c->fd);
        free(c);
        return 1;
    }
    if (code != 250)
        oc_die(2, "ATRN: %s", line);
    code = oc_serve(c, &o);
    close(c->fd);
    free(c);
    return code;
}
