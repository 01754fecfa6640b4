/*
 * sdc-monitor: a container's steady-state supervisor (issue 17).
 *
 * The Python monitor (sdcontainer/runtime/monitor.py), forked from the
 * daemon's zygote, does the namespace, scope and launch work, starts the
 * workload and then execve()s this program in the same process: the workload
 * stays our child, and the Python heap is gone.  We inherit the control
 * socket's listener, the workload's output pipes (or its pty master), its
 * stdin, the clients already attached, a memfd holding the launch spec and the
 * sealed memfd of the static init, and only:
 *
 *   - pump output to the journal (native protocol, docker's fields and 16 KiB
 *     partial-message split, as runtime/logsink.py does), or to docker's json-file
 *     log (rotated by size), and to a CRI log file when asked, and to attached
 *     clients;
 *   - serve the control socket (attach, exec, exec_wait, exec_status, resize, ping);
 *   - have a Python exec session started per `exec` (the security-critical order
 *     stays in runtime/launcher): forked by the daemon's zygote when its socket
 *     answers (no interpreter to start), else fork+exec'd here; hand out its
 *     status, which it sends on its control channel before it exits;
 *   - reap the workload and record its exit status and the OOM killer's verdict
 *     in the exit file, atomically and durably, whether or not the daemon runs.
 *
 * No libraries beyond libc: libsystemd would cost more private memory than
 * all of this.  Single-threaded, poll(2), blocking writes with timeouts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE 16384      /* docker's journald driver splits here */
#define MAX_FIELDS 16
#define MAX_CLIENTS 64
#define MAX_EXECS 128
#define MAX_FINISHED 64     /* keep the status of this many finished execs */
#define MAX_WAITERS 8
#define MAX_REQUEST (64 * 1024)
#define CHUNK 16384       /* a read's worth: dirty pages, not speed, are the budget */
#define CLIENT_TIMEOUT 10   /* seconds, as monitor.CLIENT_TIMEOUT */

extern char **environ;

/* -- configuration, from argv ------------------------------------------ */

static int listener = -1, spec_fd = -1, init_fd = -1, stdin_w = -1, master = -1;
static int tty;
static pid_t main_pid;
static const char *exit_file, *python, *zygote;
static const char *fields[MAX_FIELDS];
static int nfields;
/* The log (runtime/logsink.py): the journal unless --no-journal; docker's json-file
 * at json_path, rotated once it holds json_max_size bytes (0: never), json_max_file
 * files kept; a CRI log file at cri_path. */
static int no_journal;
static const char *json_path, *cri_path;
static long long json_max_size;
static int json_max_file = 1;

/* -- state ----------------------------------------------------------------- */

struct output { int fd, stream; };
static struct output outputs[2];
static int noutputs;

struct client { int fd, out, err, in; };
static struct client clients[MAX_CLIENTS];
static int nclients;

struct exec {
    char *id;
    pid_t pid;          /* for exec_status: the session's tini, once it says so */
    pid_t child;        /* ours to reap, when we forked the session ourselves */
    int ctl;            /* our end of the session's channel: resizes out, pid and exit in */
    int exit_code;      /* -1 while running */
    long finished;      /* order of finishing, for forgetting the oldest */
    int waiters[MAX_WAITERS];
    int nwaiters;
};
static struct exec execs[MAX_EXECS];
static long finish_counter;

static int journal = -1;
static struct sockaddr_un journal_addr = { .sun_family = AF_UNIX,
                                           .sun_path = "/run/systemd/journal/socket" };
static char pending[3][MAX_LINE];
static size_t pending_len[3];
static int json_fd = -1, cri_fd = -1;
static long long json_size;
static char buf[CHUNK];

/* -- small helpers -------------------------------------------------------- */

static void cloexec(int fd, int on)
{
    fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0);
}

static void set_blocking(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, on ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK));
}

static void set_timeouts(int fd, int send_s, int recv_s)
{
    struct timeval s = { send_s, 0 }, r = { recv_s, 0 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof s);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof r);
}

static int send_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = { fd, POLLOUT, 0 };
                poll(&pfd, 1, 1000);
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void reply(int fd, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    send_all(fd, line, (size_t)n);
}

/* -- JSON: the flat request objects the daemon sends ---------------------- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Parse the string at P (at its opening quote) into OUT (size N, may be NULL);
 * return the position after the closing quote, or NULL. */
static const char *parse_string(const char *p, char *out, size_t n)
{
    size_t k = 0;
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"') {
        unsigned c = (unsigned char)*p++;
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                if (!p[0] || !p[1] || !p[2] || !p[3])
                    return NULL;
                c = (unsigned)strtoul((char[]){ p[0], p[1], p[2], p[3], 0 }, NULL, 16);
                p += 4;
                if (c > 0x7f)
                    c = '?';  /* ids, ops and numbers are ASCII */
                break;
            case 0: return NULL;
            default: c = (unsigned char)e;
            }
        }
        if (out && k + 1 < n)
            out[k++] = (char)c;
    }
    if (*p != '"')
        return NULL;
    if (out && n)
        out[k] = 0;
    return p + 1;
}

/* Skip any JSON value at P; the position after it, or NULL. */
static const char *skip_value(const char *p)
{
    p = skip_ws(p);
    if (*p == '"')
        return parse_string(p, NULL, 0);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                if (!(p = parse_string(p, NULL, 0)))
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']')
                depth--;
            else if (!*p)
                return NULL;
            p++;
        } while (depth > 0);
        return p;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ')
        p++;
    return p;
}

/* The raw value of top-level KEY in the object REQ, or NULL. */
static const char *json_get(const char *req, const char *key)
{
    char name[64];
    const char *p = skip_ws(req);
    if (*p++ != '{')
        return NULL;
    for (;;) {
        p = skip_ws(p);
        if (*p != '"')
            return NULL;
        if (!(p = parse_string(p, name, sizeof name)))
            return NULL;
        p = skip_ws(p);
        if (*p++ != ':')
            return NULL;
        p = skip_ws(p);
        if (!strcmp(name, key))
            return p;
        if (!(p = skip_value(p)))
            return NULL;
        p = skip_ws(p);
        if (*p++ != ',')
            return NULL;
    }
}

static int json_bool(const char *req, const char *key, int dflt)
{
    const char *v = json_get(req, key);
    if (!v)
        return dflt;
    if (!strncmp(v, "true", 4))
        return 1;
    if (!strncmp(v, "false", 5) || !strncmp(v, "null", 4))
        return 0;
    if (*v == '"')
        return v[1] != '"';
    return strtol(v, NULL, 10) != 0;
}

static void json_str(const char *req, const char *key, char *out, size_t n)
{
    const char *v = json_get(req, key);
    out[0] = 0;
    if (v && *v == '"')
        parse_string(v, out, n);
    else if (v && strncmp(v, "null", 4))  /* a number given as an id */
        snprintf(out, n, "%.*s", (int)strcspn(v, ",} "), v);
}

/* Quote S as a JSON string into OUT. */
static void json_quote(const char *s, char *out, size_t n)
{
    size_t k = 0;
    out[k++] = '"';
    for (; *s && k + 8 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c < 0x20) {
            k += (size_t)snprintf(out + k, n - k, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k++] = '"';
    out[k] = 0;
}

/* -- the journal, spoken natively (systemd's journal-native protocol) ------ */

/* Unconnected, addressed on every send (as sd_journal_sendv): a restarted journald's
 * new socket is found again. */
static void journal_open(void)
{
    journal = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (journal < 0)
        return;
    int size = 8 << 20;
    setsockopt(journal, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

/* Too big for a datagram: hand journald a sealed memfd, as sd_journal_sendv does. */
static int journal_send_memfd(struct iovec *iov, int n)
{
    int fd = memfd_create("journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (write_all(fd, iov[i].iov_base, iov[i].iov_len) < 0)
            goto fail;
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
        goto fail;
    char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct msghdr mh = { .msg_name = &journal_addr, .msg_namelen = sizeof journal_addr,
                         .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    int r;
    while ((r = (int)sendmsg(journal, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    close(fd);
    return r < 0 ? -1 : 0;
fail:
    close(fd);
    return -1;
}

static void journal_send(int stream, const char *a, size_t alen, const char *b, size_t blen,
                         int partial)
{
    if (journal < 0)
        return;
    struct iovec iov[2 * MAX_FIELDS + 8];
    int n = 0;
    static const char nl = '\n';
    iov[n++] = (struct iovec){ (void *)(stream == 2 ? "PRIORITY=3\n" : "PRIORITY=6\n"), 11 };
    for (int i = 0; i < nfields; i++) {
        iov[n++] = (struct iovec){ (void *)fields[i], strlen(fields[i]) };
        iov[n++] = (struct iovec){ (void *)&nl, 1 };
    }
    if (partial)
        iov[n++] = (struct iovec){ (void *)"CONTAINER_PARTIAL_MESSAGE=true\n", 31 };
    /* MESSAGE in the binary-safe form: name, newline, little-endian 64-bit size, data. */
    static char head[8 + 8];
    uint64_t size = (uint64_t)(alen + blen);
    memcpy(head, "MESSAGE\n", 8);
    for (int i = 0; i < 8; i++)
        head[8 + i] = (char)(size >> (8 * i));
    iov[n++] = (struct iovec){ head, 16 };
    if (alen)
        iov[n++] = (struct iovec){ (void *)a, alen };
    if (blen)
        iov[n++] = (struct iovec){ (void *)b, blen };
    iov[n++] = (struct iovec){ (void *)&nl, 1 };
    struct msghdr mh = { .msg_name = &journal_addr, .msg_namelen = sizeof journal_addr,
                         .msg_iov = iov, .msg_iovlen = (size_t)n };
    for (;;) {
        if (sendmsg(journal, &mh, MSG_NOSIGNAL) >= 0)
            return;
        if (errno == EINTR)
            continue;
        if ((errno == EMSGSIZE || errno == ENOBUFS) && journal_send_memfd(iov, n) == 0)
            return;
        /* The journal is gone (shutdown): the entry is dropped, output must not block. */
        return;
    }
}

/* -- log files: docker's json-file and the CRI's (runtime/logsink.py) ----------- */

/* Every directory above PATH, as mkdir -p (kubelet's pod log directory may be new). */
static void mkdir_parents(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(dir, 0755);
        *p = '/';
    }
}

/* PATH opened for appending (0640, docker's and containerd's mode), or -1: a log we
 * cannot write is dropped, never a reason to stall the container. */
static int log_open(const char *path, int truncate)
{
    mkdir_parents(path);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0),
                0640);
}

static void log_reopen(void)
{
    if (json_path) {
        if (json_fd >= 0)
            close(json_fd);
        json_fd = log_open(json_path, 0);
        struct stat st;
        json_size = json_fd >= 0 && fstat(json_fd, &st) == 0 ? (long long)st.st_size : 0;
    }
    if (cri_path) {
        if (cri_fd >= 0)
            close(cri_fd);
        cri_fd = log_open(cri_path, 0);
    }
}

/* Go's time.RFC3339Nano in UTC: nanoseconds, trailing zeros trimmed. */
static size_t rfc3339nano(const struct timespec *ts, char *out, size_t n)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    char frac[16];
    int digits = snprintf(frac, sizeof frac, "%09ld", ts->tv_nsec);
    while (digits > 0 && frac[digits - 1] == '0')
        frac[--digits] = 0;
    if (digits)
        k += (size_t)snprintf(out + k, n - k, ".%s", frac);
    k += (size_t)snprintf(out + k, n - k, "Z");
    return k;
}

/* The length of the valid UTF-8 sequence at S (N bytes left), or 0 and in *BAD the
 * length of its maximal invalid prefix, which Python's errors="replace" turns into
 * one U+FFFD (logsink.JsonFile decodes so: both write the same bytes). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0)
        need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        need = 2;
    else if (c == 0xED)
        need = 2, hi = 0x9F;
    else if (c == 0xF0)
        need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else if (c == 0xF4)
        need = 3, hi = 0x8F;
    else {
        *bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n || s[k] < lo || s[k] > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

/* S as a JSON string's contents, escaped as Python's json.dumps(ensure_ascii=False). */
static size_t json_escape(const unsigned char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t bad = 0, len = utf8_seq(s + i, n - i, &bad);
        if (!len) {
            memcpy(out + k, "\xEF\xBF\xBD", 3);  /* U+FFFD */
            k += 3;
            i += bad;
            continue;
        }
        unsigned char c = s[i];
        if (len > 1) {
            memcpy(out + k, s + i, len);
            k += len;
        } else if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            out[k++] = '\\';
            out[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b'
                                                                                     : 'f';
        } else if (c < 0x20) {
            k += (size_t)sprintf(out + k, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
        i += len;
    }
    return k;
}

/* PATH.N-1 ... PATH.1 move up one (the oldest goes), PATH becomes PATH.1, a new PATH
 * begins (with one file kept: PATH starts over), as logsink.JsonFile.rotate. */
static void json_rotate(void)
{
    char from[4200], to[4200];
    for (int i = json_max_file - 1; i > 1; i--) {
        snprintf(from, sizeof from, "%s.%d", json_path, i - 1);
        snprintf(to, sizeof to, "%s.%d", json_path, i);
        rename(from, to);
    }
    if (json_max_file > 1) {
        snprintf(to, sizeof to, "%s.1", json_path);
        rename(json_path, to);
    }
    if (json_fd >= 0)
        close(json_fd);
    json_fd = log_open(json_path, 1);
    json_size = 0;
}

/* docker's json-file line: {"log":"...\n","stream":"stdout","time":"..."}; a partial
 * piece's log has no newline. */
static void json_write(int stream, const char *d, size_t n, int partial,
                       const struct timespec *ts)
{
    /* Each byte escapes to at most 6 (\u00XX); U+FFFD takes 3 for 1. */
    static char line[6 * MAX_LINE + 128];
    if (json_max_size > 0 && json_size >= json_max_size)
        json_rotate();
    if (json_fd < 0)
        return;
    size_t k = (size_t)sprintf(line, "{\"log\":\"");
    k += json_escape((const unsigned char *)d, n, line + k);
    if (!partial)
        k += (size_t)sprintf(line + k, "\\n");
    k += (size_t)sprintf(line + k, "\",\"stream\":\"%s\",\"time\":\"",
                         stream == 2 ? "stderr" : "stdout");
    k += rfc3339nano(ts, line + k, 64);
    k += (size_t)sprintf(line + k, "\"}\n");
    if (write_all(json_fd, line, k) == 0)
        json_size += (long long)k;
}

/* The CRI's line (kubelet reads it): TIME STREAM P|F CONTENT, content as it came. */
static void cri_write(int stream, const char *a, size_t alen, const char *b, size_t blen,
                      int partial, const struct timespec *ts)
{
    char head[96];
    size_t k = rfc3339nano(ts, head, 64);
    k += (size_t)snprintf(head + k, sizeof head - k, " %s %c ",
                          stream == 2 ? "stderr" : "stdout", partial ? 'P' : 'F');
    struct iovec iov[4] = { { head, k }, { (void *)a, alen }, { (void *)b, blen },
                            { (void *)"\n", 1 } };
    size_t total = k + alen + blen + 1;
    ssize_t w;
    while ((w = writev(cri_fd, iov, 4)) < 0 && errno == EINTR)
        ;
    if (w < 0 || (size_t)w == total)
        return;
    /* A short write (a signal, a nearly full disk): the rest, byte-exact. */
    size_t done = (size_t)w;
    for (int i = 0; i < 4; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        if (write_all(cri_fd, (char *)iov[i].iov_base + done, iov[i].iov_len - done) < 0)
            return;
        done = 0;
    }
}

/* One piece of a line (A then B; PARTIAL: the line goes on) to every log. */
static void log_piece(int stream, const char *a, size_t alen, const char *b, size_t blen,
                      int partial)
{
    journal_send(stream, a, alen, b, blen, partial);
    if (json_fd < 0 && cri_fd < 0 && !json_path)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (cri_fd >= 0)
        cri_write(stream, a, alen, b, blen, partial, &ts);
    if (json_path) {
        static char joined[MAX_LINE];
        const char *d = b;
        if (alen) {  /* the pending start of the line, then the rest */
            memcpy(joined, a, alen);
            if (blen)
                memcpy(joined + alen, b, blen);
            d = joined;
        }
        json_write(stream, d, alen + blen, partial, &ts);
    }
}

/* Whole lines go out at once; a line longer than MAX_LINE goes out in MAX_LINE
 * pieces marked partial (docker's journald driver, containerd's CRI), as
 * logsink.OutputLog. */
static void journal_feed(int stream, const char *d, size_t n)
{
    char *pend = pending[stream];
    size_t *plen = &pending_len[stream];
    while (n > 0) {
        size_t room = MAX_LINE - *plen;
        size_t look = n < room + 1 ? n : room + 1;
        const char *nl = memchr(d, '\n', look);
        if (nl) {
            size_t k = (size_t)(nl - d);
            log_piece(stream, pend, *plen, d, k, 0);
            *plen = 0;
            d += k + 1;
            n -= k + 1;
        } else if (n > room) {
            log_piece(stream, pend, *plen, d, room, 1);
            *plen = 0;
            d += room;
            n -= room;
        } else {
            memcpy(pend + *plen, d, n);
            *plen += n;
            n = 0;
        }
    }
}

static void journal_flush(void)
{
    for (int s = 1; s <= 2; s++) {
        if (pending_len[s])
            log_piece(s, pending[s], pending_len[s], NULL, 0, 1);
        pending_len[s] = 0;
    }
}

/* -- attached clients ------------------------------------------------------- */

static void drop_client(int i)
{
    close(clients[i].fd);
    clients[i] = clients[--nclients];
}

static void add_client(int fd, int out, int err, int in)
{
    if (nclients == MAX_CLIENTS) {
        close(fd);
        return;
    }
    set_blocking(fd, 1);
    set_timeouts(fd, CLIENT_TIMEOUT, 0);
    clients[nclients++] = (struct client){ fd, out, err, in };
}

static void forward(int stream, const char *d, size_t n)
{
    journal_feed(stream, d, n);
    unsigned char head[8] = { (unsigned char)stream, 0, 0, 0,
                              (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                              (unsigned char)(n >> 8), (unsigned char)n };
    for (int i = 0; i < nclients; i++) {
        struct client *c = &clients[i];
        if ((stream == 1 && !c->out) || (stream == 2 && !c->err))
            continue;
        if ((!tty && send_all(c->fd, head, 8) < 0) || send_all(c->fd, d, n) < 0)
            drop_client(i--);
    }
}

/* One read from output I; on EOF it is forgotten (and the journal flushed when all are). */
static void pump(int i)
{
    ssize_t r = read(outputs[i].fd, buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r > 0) {
        forward(outputs[i].stream, buf, (size_t)r);
        return;
    }
    /* EOF, or EIO once a pty's last slave closed */
    if (outputs[i].fd != master)
        close(outputs[i].fd);
    outputs[i] = outputs[--noutputs];
    if (!noutputs)
        journal_flush();
}

/* Client bytes to the workload's stdin; client EOF closes it (docker's CloseWrite). */
static void feed_stdin(int i)
{
    ssize_t r = recv(clients[i].fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r > 0 && stdin_w >= 0) {
        if (write_all(stdin_w, buf, (size_t)r) < 0 && master < 0) {
            close(stdin_w);
            stdin_w = -1;
        }
        return;
    }
    if (r > 0)
        return;
    clients[i].in = 0;
    if (stdin_w >= 0 && master < 0) {
        close(stdin_w);
        stdin_w = -1;
    }
}

/* -- exec sessions ------------------------------------------------------------ */

static struct exec *find_exec(const char *id)
{
    for (int i = 0; i < MAX_EXECS; i++)
        if (execs[i].id && !strcmp(execs[i].id, id))
            return &execs[i];
    return NULL;
}

static void forget_exec(struct exec *e)
{
    free(e->id);
    if (e->ctl >= 0)
        close(e->ctl);
    for (int i = 0; i < e->nwaiters; i++)
        close(e->waiters[i]);
    memset(e, 0, sizeof *e);
}

/* A free slot; the oldest finished session is forgotten when none is free, so a
 * healthcheck every second does not grow us for the container's whole life. */
static struct exec *new_exec(void)
{
    struct exec *oldest = NULL;
    for (int i = 0; i < MAX_EXECS; i++) {
        if (!execs[i].id)
            return &execs[i];
        if (execs[i].exit_code >= 0) {
            if (!oldest || execs[i].finished < oldest->finished)
                oldest = &execs[i];
        }
    }
    if (!oldest)
        return NULL;
    forget_exec(oldest);
    return oldest;
}

static void trim_finished(void)
{
    int finished = 0;
    struct exec *oldest = NULL;
    for (int i = 0; i < MAX_EXECS; i++)
        if (execs[i].id && execs[i].exit_code >= 0) {
            finished++;
            if (!oldest || execs[i].finished < oldest->finished)
                oldest = &execs[i];
        }
    if (finished > MAX_FINISHED && oldest)
        forget_exec(oldest);
}

/* Ask the zygote to fork the session (zygote._serve_exec): "exec MAIN_PID" with the
 * client's connection, the session's end of its channel and the spec's memfd.  Never
 * blocks: a zygote that is gone or busy means the fallback below. */
static int zygote_exec(int conn, int theirs)
{
    if (!zygote)
        return -1;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -1;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", zygote);
    char msg[32];
    int n = snprintf(msg, sizeof msg, "exec %d", (int)main_pid);
    int fds[3] = { conn, theirs, spec_fd };
    char cbuf[CMSG_SPACE(sizeof fds)] = { 0 };
    struct iovec iov = { msg, (size_t)n };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    int r = -1;
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        sendmsg(s, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == n)
        r = 0;
    close(s);
    return r;
}

/* Start a Python exec session (runtime/monitor.py's run_exec_session) that starts the
 * command the way the launcher always did, serves CONN, and exits with its status. */
static void start_exec(int conn, const char *req)
{
    char id[256];
    json_str(req, "id", id, sizeof id);
    struct exec *e = new_exec();
    int sp[2];
    if (!e || !id[0] || find_exec(id) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        reply(conn, "{\"error\": \"cannot start the exec session\", \"code\": 126}");
        close(conn);
        return;
    }
    /* The request (argv, env: maybe secrets) goes over the socket, never on a command
     * line every host user can read.  It fits the socket's buffer (MAX_REQUEST). */
    if (send(sp[0], req, strlen(req), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ||
        send(sp[0], "\n", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        reply(conn, "{\"error\": \"cannot start the exec session\", \"code\": 126}");
        close(conn);
        close(sp[0]);
        close(sp[1]);
        return;
    }
    pid_t pid = 0;
    if (zygote_exec(conn, sp[1]) < 0) {
        pid = fork();
        if (pid == 0) {
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            cloexec(conn, 0);
            cloexec(sp[1], 0);
            char a[5][16];
            snprintf(a[0], 16, "%d", conn);
            snprintf(a[1], 16, "%d", sp[1]);
            snprintf(a[2], 16, "%d", spec_fd);
            snprintf(a[3], 16, "%d", init_fd);
            snprintf(a[4], 16, "%d", main_pid);
            char *argv[] = { (char *)python, "-m", "sdcontainer.runtime.monitor",
                             "exec-session", a[0], a[1], a[2], a[3], a[4], NULL };
            execve(python, argv, environ);
            reply(conn, "{\"error\": \"cannot run the exec session: %s\", \"code\": 126}",
                  strerror(errno));
            _exit(126);
        }
    }
    close(sp[1]);
    close(conn);
    if (pid < 0) {
        close(sp[0]);
        return;
    }
    set_blocking(sp[0], 0);
    *e = (struct exec){ .id = strdup(id), .child = pid, .ctl = sp[0], .exit_code = -1 };
}

/* The session ended with CODE: answer its waiters. */
static void exec_done(struct exec *e, int code)
{
    if (e->exit_code >= 0)
        return;
    e->exit_code = code;
    e->finished = ++finish_counter;
    for (int w = 0; w < e->nwaiters; w++) {
        reply(e->waiters[w], "{\"exit_code\": %d}", code);
        close(e->waiters[w]);
    }
    e->nwaiters = 0;
    if (e->ctl >= 0)
        close(e->ctl);
    e->ctl = -1;
    trim_finished();
}

/* The session's channel spoke: "pid N" once it started, "exit N" as it ends.  EOF
 * without an exit line: it was killed (with its container), or, if it is our child,
 * its status comes from waitpid. */
static void exec_channel(struct exec *e)
{
    char line[128];
    ssize_t r = recv(e->ctl, line, sizeof line - 1, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        if (e->child > 0) {
            close(e->ctl);
            e->ctl = -1;
        } else {
            exec_done(e, 137);
        }
        return;
    }
    line[r] = 0;
    for (char *l = line, *save; (l = strtok_r(l, "\n", &save)); l = NULL) {
        if (!strncmp(l, "pid ", 4))
            e->pid = (pid_t)strtol(l + 4, NULL, 10);
        else if (!strncmp(l, "exit ", 5)) {
            exec_done(e, (int)strtol(l + 5, NULL, 10));
            return;
        }
    }
}

static void exec_reaped(pid_t pid, int code)
{
    for (int i = 0; i < MAX_EXECS; i++) {
        struct exec *e = &execs[i];
        if (e->id && e->child == pid) {
            e->child = 0;
            exec_done(e, code);
            return;
        }
    }
}

/* -- the end -------------------------------------------------------------------- */

static int oom_killed(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[4096], path[4200];
    int killed = 0;
    if (!f)
        return 0;
    while (!killed && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *ctrl = strchr(line, ':');
        char *cg = ctrl ? strchr(ctrl + 1, ':') : NULL;
        if (!cg)
            continue;
        *cg++ = 0;
        ctrl++;
        const char *cands[3] = { 0 };
        char c1[4200], c2[4200];
        int is_mem = 0;
        for (char *tok = ctrl, *save; (tok = strtok_r(tok, ",", &save)); tok = NULL)
            if (!strcmp(tok, "memory"))
                is_mem = 1;
        if (is_mem) {
            snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.oom_control", cg);
            cands[0] = path;
        } else if (!*ctrl) {
            snprintf(c1, sizeof c1, "/sys/fs/cgroup%s/memory.events", cg);
            snprintf(c2, sizeof c2, "/sys/fs/cgroup/unified%s/memory.events", cg);
            cands[0] = c1;
            cands[1] = c2;
        }
        for (int i = 0; cands[i] && !killed; i++) {
            FILE *m = fopen(cands[i], "re");
            char l[256];
            if (!m)
                continue;
            while (fgets(l, sizeof l, m))
                if (!strncmp(l, "oom_kill ", 9) && strtol(l + 9, NULL, 10) > 0)
                    killed = 1;
            fclose(m);
        }
    }
    fclose(f);
    return killed;
}

/* The exit file, as util.fileio.write_json_atomic writes it: temp file, fsync,
 * rename, fsync of the directory. */
static void write_exit_file(int code, int killed, const char *error)
{
    struct timespec ts;
    struct tm tm;
    char when[64], err[600], doc[1024], tmp[8500], dir[4200];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + k, sizeof when - k, ".%06ldZ", ts.tv_nsec / 1000);
    json_quote(error, err, sizeof err);
    int n = snprintf(doc, sizeof doc,
                     "{\n \"exit_code\": %d,\n \"oom_killed\": %s,\n \"finished_at\": \"%s\",\n"
                     " \"error\": %s\n}\n", code, killed ? "true" : "false", when, err);
    snprintf(dir, sizeof dir, "%s", exit_file);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (slash)
        *slash = 0;
    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", slash ? dir : ".", base);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return;
    if (write_all(fd, doc, (size_t)n) < 0 || fsync(fd) < 0 || close(fd) < 0 ||
        rename(tmp, exit_file) < 0) {
        unlink(tmp);
        return;
    }
    int d = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        fsync(d);
        close(d);
    }
}

static void finish(int code)
{
    /* The process is gone but a pipe may still hold output: drain what is there. */
    for (int i = 0; i < noutputs; i++) {
        set_blocking(outputs[i].fd, 0);
        ssize_t r;
        while ((r = read(outputs[i].fd, buf, sizeof buf)) > 0)
            forward(outputs[i].stream, buf, (size_t)r);
    }
    journal_flush();
    for (int i = 0; i < nclients; i++)
        shutdown(clients[i].fd, SHUT_RDWR);
    write_exit_file(code, code == 137 && oom_killed(), "");
    _exit(0);
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (pid == main_pid)
            finish(code);
        exec_reaped(pid, code);
    }
}

/* -- the control socket ----------------------------------------------------------- */

static char *read_request(int conn)
{
    size_t cap = 256, n = 0;
    char *req = malloc(cap);
    while (req) {
        char c;
        ssize_t r = recv(conn, &c, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || n + 2 > MAX_REQUEST)
            break;
        if (c == '\n') {
            req[n] = 0;
            return req;
        }
        if (n + 2 > cap) {
            char *more = realloc(req, cap *= 2);
            if (!more)
                break;
            req = more;
        }
        req[n++] = c;
    }
    free(req);
    return NULL;
}

static void handle(int conn)
{
    char op[32], id[256];
    set_blocking(conn, 1);
    set_timeouts(conn, 5, 5);
    char *req = read_request(conn);
    if (!req) {
        reply(conn, "{\"error\": \"connection closed before a request\"}");
        close(conn);
        return;
    }
    json_str(req, "op", op, sizeof op);
    if (!strcmp(op, "attach")) {
        reply(conn, "{\"ok\": true}");
        add_client(conn, json_bool(req, "stdout", 1), json_bool(req, "stderr", 1),
                   json_bool(req, "stdin", 0));
        free(req);
        return;
    }
    if (!strcmp(op, "exec")) {
        set_timeouts(conn, 0, 0);
        start_exec(conn, req);
        free(req);
        return;
    }
    if (!strcmp(op, "exec_wait") || !strcmp(op, "exec_status")) {
        json_str(req, "id", id, sizeof id);
        struct exec *e = find_exec(id);
        if (!e) {
            reply(conn, "{\"error\": \"no such exec\"}");
        } else if (op[5] == 'w' && e->exit_code < 0 && e->nwaiters < MAX_WAITERS) {
            e->waiters[e->nwaiters++] = conn;
            free(req);
            return;
        } else if (op[5] == 'w') {
            reply(conn, "{\"exit_code\": %d}", e->exit_code);
        } else if (e->exit_code < 0) {
            reply(conn, "{\"pid\": %d, \"running\": true, \"exit_code\": null}", e->pid);
        } else {
            reply(conn, "{\"pid\": %d, \"running\": false, \"exit_code\": %d}", e->pid,
                  e->exit_code);
        }
    } else if (!strcmp(op, "resize")) {
        const char *h = json_get(req, "h"), *w = json_get(req, "w");
        unsigned short hh = h ? (unsigned short)strtoul(h, NULL, 10) : 0;
        unsigned short ww = w ? (unsigned short)strtoul(w, NULL, 10) : 0;
        json_str(req, "id", id, sizeof id);
        if (id[0]) {
            struct exec *e = find_exec(id);
            if (e && e->ctl >= 0) {
                char line[32];
                int n = snprintf(line, sizeof line, "%u %u\n", hh, ww);
                send(e->ctl, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
            }
        } else if (master >= 0) {
            struct winsize ws = { .ws_row = hh, .ws_col = ww };
            ioctl(master, TIOCSWINSZ, &ws);
        }
        reply(conn, "{\"ok\": true}");
    } else if (!strcmp(op, "ping")) {
        reply(conn, "{\"ok\": true, \"pid\": %d}", main_pid);
    } else if (!strcmp(op, "reopen_log")) {
        /* kubelet (or logrotate) renamed the file away: what follows goes to a new one */
        log_reopen();
        reply(conn, "{\"ok\": true}");
    } else {
        char q[80];
        json_quote(op, q, sizeof q);
        q[strlen(q) - 1] = 0;
        reply(conn, "{\"error\": \"cannot %s now\"}", q + 1);
    }
    free(req);
    close(conn);
}

/* -- main ------------------------------------------------------------------------------ */

static int usage(const char *why)
{
    fprintf(stderr, "sdc-monitor: %s (run by sdcontainer's monitor, not by hand)\n", why);
    return 125;
}

int main(int argc, char **argv)
{
    /* --listener FD --pid PID --exit-file PATH --python PATH --spec-fd FD --init-fd FD
     * [--zygote PATH] [--tty] [--out FD:STREAM]... [--stdin FD] [--master FD]
     * [--client FD:OUT:ERR:IN]... [--field KEY=VALUE]... [--no-journal]
     * [--json-log PATH --log-max-size BYTES --log-max-file N] [--cri-log PATH] */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tty")) {
            tty = 1;
            continue;
        }
        if (!strcmp(a, "--no-journal")) {
            no_journal = 1;
            continue;
        }
        if (!v)
            return usage("missing value");
        i++;
        if (!strcmp(a, "--listener"))
            listener = atoi(v);
        else if (!strcmp(a, "--pid"))
            main_pid = atoi(v);
        else if (!strcmp(a, "--exit-file"))
            exit_file = v;
        else if (!strcmp(a, "--python"))
            python = v;
        else if (!strcmp(a, "--zygote"))
            zygote = v;
        else if (!strcmp(a, "--spec-fd"))
            spec_fd = atoi(v);
        else if (!strcmp(a, "--init-fd"))
            init_fd = atoi(v);
        else if (!strcmp(a, "--stdin"))
            stdin_w = atoi(v);
        else if (!strcmp(a, "--master"))
            master = atoi(v);
        else if (!strcmp(a, "--out") && noutputs < 2)
            sscanf(v, "%d:%d", &outputs[noutputs].fd, &outputs[noutputs].stream), noutputs++;
        else if (!strcmp(a, "--client")) {
            int fd, o, e, in;
            if (sscanf(v, "%d:%d:%d:%d", &fd, &o, &e, &in) == 4) {
                cloexec(fd, 1);
                add_client(fd, o, e, in);
            }
        } else if (!strcmp(a, "--field") && nfields < MAX_FIELDS)
            fields[nfields++] = v;
        else if (!strcmp(a, "--json-log"))
            json_path = v;
        else if (!strcmp(a, "--log-max-size"))
            json_max_size = atoll(v);
        else if (!strcmp(a, "--log-max-file"))
            json_max_file = atoi(v) > 0 ? atoi(v) : 1;
        else if (!strcmp(a, "--cri-log"))
            cri_path = v;
        else
            return usage("unknown option");
    }
    if (listener < 0 || main_pid <= 0 || !exit_file || !python)
        return usage("missing options");
    /* Ours alone; the spec and the static init are handed to exec sessions. */
    cloexec(listener, 1);
    for (int i = 0; i < noutputs; i++) {
        cloexec(outputs[i].fd, 1);
        set_blocking(outputs[i].fd, 0);
        if (outputs[i].stream < 1 || outputs[i].stream > 2)
            outputs[i].stream = 1;
    }
    if (stdin_w >= 0)
        cloexec(stdin_w, 1);
    if (master >= 0)
        cloexec(master, 1);
    set_blocking(listener, 0);  /* accept after poll: a vanished client must not block us */
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (!no_journal)
        journal_open();
    log_reopen();
    /* The workload may have ended before we were exec'd. */
    reap();

    struct pollfd pfd[2 + 2 + MAX_CLIENTS + MAX_EXECS];
    int who[2 + 2 + MAX_CLIENTS + MAX_EXECS];
    for (;;) {
        int n = 0;
        pfd[n] = (struct pollfd){ sfd, POLLIN, 0 };
        who[n++] = -1;
        pfd[n] = (struct pollfd){ listener, POLLIN, 0 };
        who[n++] = -2;
        for (int i = 0; i < noutputs; i++) {
            pfd[n] = (struct pollfd){ outputs[i].fd, POLLIN, 0 };
            who[n++] = 1000 + outputs[i].fd;
        }
        for (int i = 0; i < nclients; i++)
            if (clients[i].in) {
                pfd[n] = (struct pollfd){ clients[i].fd, POLLIN, 0 };
                who[n++] = 2000 + clients[i].fd;
            }
        for (int i = 0; i < MAX_EXECS; i++)
            if (execs[i].id && execs[i].ctl >= 0 && execs[i].exit_code < 0) {
                pfd[n] = (struct pollfd){ execs[i].ctl, POLLIN, 0 };
                who[n++] = 100000 + i;
            }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            write_exit_file(255, 0, "monitor failed: poll");
            _exit(255);
        }
        for (int k = 0; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            if (who[k] == -1) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) > 0)
                    ;
                reap();
            } else if (who[k] == -2) {
                int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (conn >= 0)
                    handle(conn);
            } else if (who[k] >= 100000) {
                /* the slot may have been reused since the poll set was built */
                struct exec *e = &execs[who[k] - 100000];
                if (e->id && e->ctl == pfd[k].fd && e->exit_code < 0)
                    exec_channel(e);
            } else if (who[k] >= 2000) {
                /* clients may have moved since the poll set was built: look it up */
                for (int i = 0; i < nclients; i++)
                    if (clients[i].fd == who[k] - 2000 && clients[i].in) {
                        feed_stdin(i);
                        break;
                    }
            } else {
                for (int i = 0; i < noutputs; i++)
                    if (outputs[i].fd == who[k] - 1000) {
                        pump(i);
                        break;
                    }
            }
        }
    }
}
