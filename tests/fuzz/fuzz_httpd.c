/*
 * libFuzzer target for the unsubscribe endpoint (lib/httpd.c): the
 * server runs in this process (httpd_start() on 127.0.0.1, a database
 * and a key of its own) and each input is one raw client connection's
 * bytes, sent whole, then the write side closed and the answer read.
 * That drives what the code does itself (routing on the path, the token
 * cut from it by unsub_check(), the RFC 8058 form body put together by
 * post_each(), X-Forwarded-For for the rate limit) behind libmicrohttpd's
 * own request parsing, as a client would.  unsub_check() is also called
 * directly on the input as a string (the CLI's `samail unsubscribe`).
 * `tests/fuzz/run.sh SECONDS` (make fuzz) builds and runs it with
 * tests/fuzz/corpus/fuzz_httpd as seeds and httpd.dict.
 *
 * In the input, "@T1" and "@T2" stand for valid tokens of declarers 1
 * (ja) and 2 (en), "@TX" for declarer 1's token for another list (the
 * same key): the fuzzer could never forge one.
 *
 * Checks: no crash, leak or undefined behaviour; every answer starts
 * with an HTTP status line and is bounded; no 500 (a page that did not
 * render) or 503 (the database or the keys failed: nothing here makes
 * them fail); the database changes only on a 200 to a POST carrying a
 * valid token of this list, and then only that declarer becomes
 * unsubscribed (the target puts it back); unsub_check() accepts only
 * what holds a token of ours.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "buf.h"
#include "config.h"
#include "db.h"
#include "err.h"
#include "httpd.h"
#include "log.h"
#include "token.h"
#include "unsub.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ANSWER_MAX	(1024 * 1024)	/* more than this is unbounded */

static const char key[] = "0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef";
static struct config *cfg;
static struct httpd *srv;
static struct db *chk;		/* our own look at the database */
static struct sockaddr_in addr;
static char tok1[TOKEN_LEN + 1], tok2[TOKEN_LEN + 1], tokx[TOKEN_LEN + 1];

static void
die(const char *what, const struct err *e)
{
	fprintf(stderr, "fuzz_httpd: %s: %s\n", what, e != NULL ? e->msg : "");
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char dir[1024], path[1200], cwd[1024], conf[4096];
	struct token_keys k = { (const unsigned char *)key, sizeof(key) - 1,
	    NULL, 0 };
	struct httpd_opts o;
	struct err e = ERR_INIT;
	struct db *db = NULL;
	const char *bound;
	FILE *fp;

	(void)argc;
	(void)argv;
	/* Below -q: libmicrohttpd's warnings about the malformed requests
	 * are expected, one or two per input. */
	log_init(-2, 0);
	snprintf(dir, sizeof(dir), "%s/fuzz_httpd.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL || getcwd(cwd, sizeof(cwd)) == NULL)
		die("mkdtemp", NULL);
	snprintf(path, sizeof(path), "%s/unsubscribe.key", dir);
	if ((fp = fopen(path, "w")) == NULL)
		die(path, NULL);
	fprintf(fp, "%s\n", key);
	fclose(fp);
	chmod(path, 0600);
	snprintf(conf, sizeof(conf), "[database]\npath = %s/samail.db\n"
	    "[paths]\ntemplates = %s/templates\ndata = %s\n"
	    "[mail]\nfrom = SECURITY ACTION <news@example.jp>\n"
	    "list_id = <news.example.jp>\n"
	    "[unsubscribe]\nbase_url = http://127.0.0.1/u/\n"
	    "secret_file = %s\n", dir, cwd, cwd, path);
	snprintf(path, sizeof(path), "%s/samail.conf", dir);
	if ((fp = fopen(path, "w")) == NULL)
		die(path, NULL);
	fputs(conf, fp);
	fclose(fp);
	if (config_load(&cfg, path, NULL, &e) < 0)
		die("config", &e);
	if (db_open(&db, cfg->db_path, DB_CREATE, 1000, &e) < 0 ||
	    db_migrate(db, &e) < 0 ||
	    db_exec(db, "INSERT INTO subscriber (id, email, org, locale, "
	    "created, updated) VALUES (1, 'taro@example.co.jp', 'A', 'ja', "
	    "'x', 'x'), (2, 'hanako@example.org', 'B', 'en', 'x', 'x')",
	    &e) < 0)
		die("database", &e);
	db_close(db);
	if (db_open(&chk, cfg->db_path, 0, 5000, &e) < 0)
		die("database", &e);
	if (token_make(&k, 1, "news.example.jp", tok1, &e) < 0 ||
	    token_make(&k, 2, "news.example.jp", tok2, &e) < 0 ||
	    token_make(&k, 1, "other.example.jp", tokx, &e) < 0)
		die("token", &e);
	memset(&o, 0, sizeof(o));
	o.cfg = cfg;
	o.listen = "127.0.0.1:0";
	o.busy_ms = 2000;
	o.timeout_s = 1;
	o.rate_burst = 1000000000;	/* the fuzzer is one client */
	o.rate_per_min = 1000000000;
	if (httpd_start(&srv, &o, &e) < 0)
		die("httpd_start", &e);
	bound = httpd_address(srv);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(strrchr(bound, ':') + 1));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return 0;
}

/* The input with @T1, @T2, @TX replaced by the tokens. */
static void
expand(const uint8_t *data, size_t size, struct buf *out, int *valid)
{
	*valid = 0;
	for (size_t i = 0; i < size; i++) {
		if (i + 3 <= size && memcmp(data + i, "@T", 2) == 0 &&
		    strchr("12X", data[i + 2]) != NULL && data[i + 2] != '\0') {
			char t = (char)data[i + 2];

			buf_addstr(out, t == '1' ? tok1 : t == '2' ? tok2 : tokx);
			*valid |= t == '1' ? 1 : t == '2' ? 2 : 0;
			i += 2;
			continue;
		}
		buf_addch(out, (char)data[i]);
	}
	/* The fuzzer also learns the tokens' bytes (from the comparisons
	 * below): a literal one is as valid as its placeholder. */
	if (strstr(buf_str(out), tok1) != NULL)
		*valid |= 1;
	if (strstr(buf_str(out), tok2) != NULL)
		*valid |= 2;
}

/* Send req whole, close our side, read the answer (to EOF). */
static void
exchange(const struct buf *req, struct buf *ans)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t off = 0;
	char blk[16384];
	struct pollfd pfd;
	ssize_t n;

	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("connect", NULL);
	while (off < req->len) {
		n = send(fd, req->data + off, req->len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;	/* the server closed early: fine */
		}
		off += (size_t)n;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	/*
	 * Our end is closed once the answer starts, or after 100 ms without
	 * one (a request still incomplete): libmicrohttpd (epoll) sometimes
	 * misses an end of input that came with the request itself and
	 * waits for its idle timeout instead.
	 */
	while (poll(&pfd, 1, 100) < 0 && errno == EINTR)
		;
	shutdown(fd, SHUT_WR);
	for (;;) {
		/* The server's idle timeout is 1 s: it must be done by 6. */
		int pr = poll(&pfd, 1, 6000);

		if (pr == 0) {
			fprintf(stderr, "fuzz_httpd: no end to the answer\n");
			abort();
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			die("poll", NULL);
		}
		if ((n = recv(fd, blk, sizeof(blk), 0)) <= 0)
			break;	/* EOF, or reset after an error answer */
		buf_add(ans, blk, (size_t)n);
		if (ans->len > ANSWER_MAX)
			abort();	/* unbounded */
	}
	close(fd);
}

/* Each subscriber's status and the suppression list, in one string. */
static void
digest(struct buf *d)
{
	sqlite3_stmt *st = db_prepare(chk, "SELECT (SELECT group_concat(id || "
	    "status, ',') FROM (SELECT id, status FROM subscriber ORDER BY id))"
	    " || '|' || (SELECT count(*) FROM suppression)", NULL);

	if (st == NULL || sqlite3_step(st) != SQLITE_ROW)
		abort();
	buf_reset(d);
	buf_addstr(d, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static const char clean_state[] = "1active,2active|0";

/* The status code of each answer in ans (pipelined requests get one
 * each); checks what every answer must be. */
static int
check_answers(const struct buf *ans, int *ok200)
{
	const char *p = buf_str(ans), *end = p + ans->len;
	int n = 0;

	*ok200 = 0;
	if (ans->len == 0)
		return 0;	/* closed: an incomplete request */
	if (ans->len < 12 || strncmp(p, "HTTP/1.", 7) != 0)
		abort();
	for (; p != NULL && p < end; n++) {
		int code = atoi(p + 9);

		if ((code < 200 && code != 100) || code > 599 ||
		    code == 500 || code == 503) {
			fprintf(stderr, "fuzz_httpd: answered %d\n", code);
			abort();
		}
		if (code == 200)
			*ok200 = 1;
		if (getenv("FUZZ_HTTPD_SHOW") != NULL)
			fprintf(stderr, "fuzz_httpd: answered %.*s\n",
			    (int)strcspn(p, "\r\n"), p);
		/* The next answer, if any (a page never holds this). */
		p = memmem(p + 1, (size_t)(end - p - 1), "HTTP/1.", 7);
	}
	/* The form posts to base_url and a token of ours, nothing else: a
	 * page must not echo whatever else the path held. */
	for (p = buf_str(ans); (p = memmem(p, (size_t)(end - p),
	    "action=\"", 8)) != NULL; p++) {
		const char *v = p + 8, *q = memchr(v, '"', (size_t)(end - v));
		size_t base = strlen("http://127.0.0.1/u/");

		if (q == NULL || (size_t)(q - v) != base + TOKEN_LEN ||
		    strncmp(v, "http://127.0.0.1/u/", base) != 0 ||
		    (strncmp(v + base, tok1, TOKEN_LEN) != 0 &&
		    strncmp(v + base, tok2, TOKEN_LEN) != 0)) {
			fprintf(stderr, "fuzz_httpd: a form posting to %.*s\n",
			    q != NULL ? (int)(q - v) : 80, v);
			abort();
		}
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf req = BUF_INIT(0), ans = BUF_INIT(0), d = BUF_INIT(0);
	struct err e = ERR_INIT;
	int valid, ok200;
	int64_t id = 0;

	expand(data, size, &req, &valid);

	/* The token cut from what an admin pastes: only ours verify. */
	if (unsub_check(cfg, buf_str(&req), time(NULL), &id, &e) == 0 &&
	    (id < 1 || id > 2 || !(valid & (int)id)))
		abort();

	exchange(&req, &ans);
	check_answers(&ans, &ok200);
	digest(&d);
	if (strcmp(buf_str(&d), clean_state) != 0) {
		/* Only a 200 to a one-click POST with a valid token writes;
		 * and only that declarer is unsubscribed. */
		if (!ok200 || memmem(req.data, req.len, "POST", 4) == NULL ||
		    valid == 0)
			abort();
		if (strcmp(buf_str(&d), "1unsubscribed,2active|1") != 0 &&
		    strcmp(buf_str(&d), "1active,2unsubscribed|1") != 0 &&
		    strcmp(buf_str(&d), "1unsubscribed,2unsubscribed|2") != 0)
			abort();
		if (db_exec(chk, "UPDATE subscriber SET status = 'active', "
		    "status_reason = NULL, status_changed = NULL; "
		    "DELETE FROM suppression", &e) < 0)
			die("reset", &e);
	}
	buf_release(&req);
	buf_release(&ans);
	buf_release(&d);
	return 0;
}
