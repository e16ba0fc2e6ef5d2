/*
 * test_fetch — fetch_url() against tests/tools/httpd.py, which this test
 * starts on 127.0.0.1 and stops: conditional GET, compression, redirects
 * (and the refused ones), size caps, timeouts, HTTP errors, local files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fetch.h"
#include "xalloc.h"

struct server {
	pid_t	 pid;
	int	 port;
	char	 dir[64];
	char	*log;
	char	*srcdir;
};

static struct server srv;

static char *
url(const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", srv.port, path);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static char *
read_body(FILE *fp, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	for (;;) {
		buf = xrealloc(buf, cap += 65536);
		got = fread(buf + n, 1, cap - n - 1, fp);
		n += got;
		if (got == 0)
			break;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int
start_server(void **state)
{
	const char *src = getenv("SAMAIL_SRCDIR");
	char *portfile, *script, *root;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	FILE *fp;

	(void)state;
	srv.srcdir = xstrdup(src ? src : ".");
	strcpy(srv.dir, "/tmp/samail-fetch-XXXXXX");
	if (mkdtemp(srv.dir) == NULL)
		return -1;
	portfile = xasprintf("%s/port", srv.dir);
	srv.log = xasprintf("%s/requests.log", srv.dir);
	script = xasprintf("%s/tests/tools/httpd.py", srv.srcdir);
	root = xasprintf("%s/tests/data/feeds", srv.srcdir);
	if ((srv.pid = fork()) == 0) {
		execl("/usr/bin/python3", "python3", script, "--root", root,
		    "--port", "0", "--port-file", portfile, "--log", srv.log,
		    (char *)NULL);
		_exit(127);
	}
	/* Wait for the server to listen (up to ~10 s on a loaded box). */
	for (int i = 0; i < 500 && srv.port == 0; i++) {
		if ((fp = fopen(portfile, "r")) != NULL) {
			if (fscanf(fp, "%d", &srv.port) != 1)
				srv.port = 0;
			fclose(fp);
		}
		if (srv.port == 0)
			nanosleep(&ts, NULL);
	}
	free(portfile);
	free(script);
	free(root);
	return srv.port > 0 ? 0 : -1;
}

static int
stop_server(void **state)
{
	char *cmd;

	(void)state;
	if (srv.pid > 0) {
		kill(srv.pid, SIGTERM);
		waitpid(srv.pid, NULL, 0);
	}
	cmd = xasprintf("rm -rf '%s'", srv.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", srv.dir);
	free(cmd);
	free(srv.log);
	free(srv.srcdir);
	return 0;
}

/* The last request line the server logged, as JSON text. */
static char *
last_request(void)
{
	size_t len;
	char *all = slurp(srv.log, &len), *last, *out;

	while (len > 0 && all[len - 1] == '\n')
		all[--len] = '\0';
	last = strrchr(all, '\n');
	out = xstrdup(last ? last + 1 : all);
	free(all);
	return out;
}

static void
test_get_and_conditional(void **state)
{
	struct fetch_opts o = { 0 };
	struct fetch_cond cond = { 0 };
	struct fetch_result r, r2;
	struct err e = ERR_INIT;
	char *u = url("/jvn.rdf"), *path, *want, *got, *req;
	size_t wlen, glen;

	(void)state;
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), 0);
	assert_int_equal(r.status, 200);
	assert_false(r.not_modified);
	assert_non_null(r.body);
	assert_non_null(r.etag);
	assert_non_null(r.last_modified);
	assert_string_equal(r.effective_url, u);
	path = xasprintf("%s/tests/data/feeds/jvn.rdf", srv.srcdir);
	want = slurp(path, &wlen);
	got = read_body(r.body, &glen);
	assert_int_equal(glen, wlen);
	assert_int_equal(r.bytes, wlen);
	assert_memory_equal(got, want, wlen);
	req = last_request();
	/* A User-Agent naming samail and its version; compression offered. */
	assert_non_null(strstr(req, "\"User-Agent\": \"samail/" SAMAIL_VERSION
	    " (+"));
	assert_non_null(strstr(req, "Accept-Encoding"));
	free(req);

	/* Again with the validators: 304, no body, validators kept. */
	cond.etag = r.etag;
	cond.last_modified = r.last_modified;
	assert_int_equal(fetch_url(u, &o, &cond, &r2, &e), 0);
	assert_int_equal(r2.status, 304);
	assert_true(r2.not_modified);
	assert_null(r2.body);
	assert_string_equal(r2.etag, r.etag);
	req = last_request();
	assert_non_null(strstr(req, "If-None-Match"));
	assert_non_null(strstr(req, "If-Modified-Since"));
	free(req);
	fetch_result_release(&r2);

	/* Last-Modified alone is enough too. */
	cond.etag = NULL;
	assert_int_equal(fetch_url(u, &o, &cond, &r2, &e), 0);
	assert_true(r2.not_modified);
	fetch_result_release(&r2);

	/* A stale ETag: the full document again. */
	cond.etag = "\"stale\"";
	cond.last_modified = NULL;
	assert_int_equal(fetch_url(u, &o, &cond, &r2, &e), 0);
	assert_int_equal(r2.status, 200);
	assert_non_null(r2.body);
	fetch_result_release(&r2);

	/* A validator with CR/LF (a corrupted row) is not sent. */
	cond.etag = "\"x\"\r\nX-Injected: 1";
	assert_int_equal(fetch_url(u, &o, &cond, &r2, &e), 0);
	req = last_request();
	assert_null(strstr(req, "X-Injected"));
	free(req);
	fetch_result_release(&r2);

	fetch_result_release(&r);
	free(want);
	free(got);
	free(path);
	free(u);
}

/*
 * A host name in Unicode is sent in its ASCII form (UTS #46 maps the
 * full-width ｌｏｃａｌｈｏｓｔ to localhost): libcurl converts it only in a
 * UTF-8 locale, and cron runs samail in the C locale (it failed with "URL
 * using bad/illegal format").
 */
static void
test_idn_host(void **state)
{
	struct fetch_opts o = { 0 };
	struct fetch_result r;
	struct err e = ERR_INIT;
	char *u = xasprintf("http://ｌｏｃａｌｈｏｓｔ:%d/ipa-alert.rdf", srv.port);

	(void)state;
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.effective_url, "//localhost:"));
	fetch_result_release(&r);
	free(u);
}

static void
test_gzip(void **state)
{
	struct fetch_opts o = { 0 };
	struct fetch_result r;
	struct err e = ERR_INIT;
	char *u = url("/ipa-alert.rdf?gzip=1"), *path, *want, *got;
	size_t wlen, glen;

	(void)state;
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), 0);
	path = xasprintf("%s/tests/data/feeds/ipa-alert.rdf", srv.srcdir);
	want = slurp(path, &wlen);
	got = read_body(r.body, &glen);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	fetch_result_release(&r);
	free(want);
	free(got);
	free(path);
	free(u);
}

static void
test_redirects(void **state)
{
	struct fetch_opts o = { 0 };
	struct fetch_result r;
	struct err e = ERR_INIT;
	char *u, *target;

	(void)state;
	/* Five hops are followed; the effective URL is the last one. */
	u = url("/hops/5?f=ipa-alert.rdf");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), 0);
	assert_non_null(strstr(r.effective_url, "/ipa-alert.rdf"));
	fetch_result_release(&r);
	free(u);
	u = url("/hops/6?f=ipa-alert.rdf");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "redirects"));
	fetch_result_release(&r);
	free(u);

	/* A redirect to file:// is refused, even with local files allowed:
	 * the remote side never gets to name a local file. */
	o.allow_local = 1;
	u = url("/redirect?to=file:///etc/passwd");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "file:///etc/passwd"));
	assert_non_null(strstr(e.msg, "not http or https"));
	assert_null(r.body);
	fetch_result_release(&r);
	free(u);

	/* Other schemes too; the message names the refused target, also
	 * when the URL we asked does not spell it out (it said '?'). */
	u = url("/redirect?to=ftp%3A%2F%2F127.0.0.1%2Fx");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "redirected to 'ftp://127.0.0.1/x'"));
	fetch_result_release(&r);
	free(u);

	/* A redirect whose own body (which libcurl skips) is over the cap
	 * is followed: the cap is on the document it leads to. */
	o.max_bytes = 4096;
	u = url("/redirect?to=/edge-xxe.xml&bytes=8192");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.effective_url, "/edge-xxe.xml"));
	fetch_result_release(&r);
	free(u);
	o.max_bytes = 0;

	/* http -> http elsewhere on loopback is fine. */
	target = url("/jvn.rdf");
	u = xasprintf("http://127.0.0.1:%d/redirect?to=%s", srv.port, target);
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), 0);
	assert_string_equal(r.effective_url, target);
	fetch_result_release(&r);
	free(u);
	free(target);
}

static void
test_size_cap(void **state)
{
	struct fetch_opts o = { 0 };
	struct fetch_result r;
	struct err e = ERR_INIT;
	char *u;

	(void)state;
	o.max_bytes = 1024 * 1024;
	/* Honest Content-Length over the cap. */
	u = url("/big?bytes=3000000");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_TOOBIG);
	assert_non_null(strstr(e.msg, "limit"));
	assert_null(r.body);
	fetch_result_release(&r);
	free(u);
	/* No Content-Length: caught while writing. */
	u = url("/big?bytes=3000000&nolength=1");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_TOOBIG);
	fetch_result_release(&r);
	free(u);
	/* Exactly at the cap is fine. */
	u = url("/big?bytes=1048576");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), 0);
	assert_int_equal(r.bytes, 1048576);
	fetch_result_release(&r);
	free(u);
	/* A gzip bomb: 64 kB on the wire, 64 MB inflated, default cap. */
	o.max_bytes = 0;
	u = url("/bomb");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_TOOBIG);
	fetch_result_release(&r);
	free(u);
}

static void
test_timeouts(void **state)
{
	struct fetch_opts o = { 0 };
	struct fetch_result r;
	struct err e = ERR_INIT;
	char *u;

	(void)state;
	o.timeout = 2;
	u = url("/stall");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "no complete answer within 2 s"));
	fetch_result_release(&r);
	free(u);
	u = url("/slowloris");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	fetch_result_release(&r);
	free(u);
}

static void
test_http_errors(void **state)
{
	struct fetch_opts o = { 0 };
	struct fetch_result r;
	struct err e = ERR_INIT;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	int s, port;
	char *u;

	(void)state;
	u = url("/status/500");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "HTTP 500"));
	assert_int_equal(r.status, 500);
	fetch_result_release(&r);
	free(u);
	/* An error page over the cap is still the server's error (69,
	 * retried next run), not a document over the cap (65): the cap is
	 * on the feed, and an error page is never stored. */
	o.max_bytes = 1024;
	u = url("/status/503?bytes=8192");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "HTTP 503"));
	assert_int_equal(r.status, 503);
	assert_null(r.body);
	fetch_result_release(&r);
	free(u);
	o.max_bytes = 0;
	u = url("/no-such-feed.rdf");
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "HTTP 404"));
	assert_non_null(strstr(e.msg, "check its URL"));
	fetch_result_release(&r);
	free(u);

	/* https to a port that speaks plain http: the handshake fails
	 * before any certificate is seen; not blamed on one. */
	u = xasprintf("https://127.0.0.1:%d/jvn.rdf", srv.port);
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "TLS handshake failed"));
	assert_null(strstr(e.msg, "certificate"));
	fetch_result_release(&r);
	free(u);

	/* Connection refused: a port we bound and closed. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &salen), 0);
	port = ntohs(sa.sin_port);
	close(s);
	u = xasprintf("http://127.0.0.1:%d/feed.rdf", port);
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NET);
	assert_non_null(strstr(e.msg, "cannot connect"));
	fetch_result_release(&r);
	free(u);
}

static void
test_check_url(void **state)
{
	struct fetch_opts o = { 0 };
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(fetch_check_url("https://jvn.jp/rss/jvn.rdf", &o, &e), 0);
	assert_int_equal(fetch_check_url("HTTP://jvn.jp/x", &o, &e), 0);
	assert_int_equal(fetch_check_url("ftp://jvn.jp/x", &o, &e), -ERR_INVAL);
	assert_int_equal(fetch_check_url("javascript:alert(1)", &o, &e),
	    -ERR_INVAL);
	assert_int_equal(fetch_check_url("https://a b/", &o, &e), -ERR_INVAL);
	assert_int_equal(fetch_check_url("https://a/\r\nHost: x", &o, &e),
	    -ERR_INVAL);
	assert_int_equal(fetch_check_url("", &o, &e), -ERR_INVAL);
	assert_int_equal(fetch_check_url("file:///etc/passwd", &o, &e),
	    -ERR_INVAL);
	assert_non_null(strstr(e.msg, "allow_local_files"));
	assert_int_equal(fetch_check_url("/srv/feeds/jvn.rdf", &o, &e),
	    -ERR_INVAL);
	o.allow_local = 1;
	assert_int_equal(fetch_check_url("/srv/feeds/jvn.rdf", &o, &e), 0);
	assert_int_equal(fetch_check_url("file:///srv/feeds/jvn.rdf", &o, &e), 0);
	assert_int_equal(fetch_check_url("file://localhost/srv/x", &o, &e), 0);
	assert_int_equal(fetch_check_url("file://evil.example/x", &o, &e),
	    -ERR_INVAL);
	assert_int_equal(fetch_check_url("samples/jvn.rdf", &o, &e),
	    -ERR_INVAL);
	assert_true(fetch_is_local("file:///x"));
	assert_true(fetch_is_local("/x"));
	assert_false(fetch_is_local("https://x/"));
	/* An internationalised host name is a URL; a label IDNA forbids
	 * is refused when the feed is added, not at every fetch. */
	assert_int_equal(fetch_check_url("https://例え.jp/feed.rdf", &o, &e), 0);
	assert_int_equal(fetch_check_url("https://xn--a.テスト/x", &o, &e),
	    -ERR_INVAL);
	assert_non_null(strstr(e.msg, "internationalised domain name"));
}

static void
test_local(void **state)
{
	struct fetch_opts o = { 0 };
	struct fetch_result r;
	struct err e = ERR_INIT;
	char *path, *u, *got, *want, *fifo;
	size_t glen, wlen;

	(void)state;
	path = xasprintf("%s/tests/data/feeds/jvn.rdf", srv.srcdir);
	u = xasprintf("file://%s", path);
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_INVAL);
	fetch_result_release(&r);

	o.allow_local = 1;
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), 0);
	assert_true(r.local);
	assert_int_equal(r.status, 200);
	want = slurp(path, &wlen);
	got = read_body(r.body, &glen);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	free(got);
	fetch_result_release(&r);
	assert_int_equal(fetch_url(path, &o, NULL, &r, &e), 0);
	assert_string_equal(r.effective_url, path);
	fetch_result_release(&r);

	o.max_bytes = 1000;
	assert_int_equal(fetch_url(path, &o, NULL, &r, &e), -ERR_TOOBIG);
	fetch_result_release(&r);
	o.max_bytes = 0;

	free(u);
	u = xasprintf("%s/no-such.rdf", srv.dir);
	assert_int_equal(fetch_url(u, &o, NULL, &r, &e), -ERR_NOINPUT);
	fetch_result_release(&r);
	assert_int_equal(fetch_url(srv.dir, &o, NULL, &r, &e), -ERR_INVAL);
	fetch_result_release(&r);
	/* A FIFO must not hang the run. */
	fifo = xasprintf("%s/fifo", srv.dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(fetch_url(fifo, &o, NULL, &r, &e), -ERR_INVAL);
	fetch_result_release(&r);
	unlink(fifo);
	free(fifo);
	free(u);
	free(want);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_url),
		cmocka_unit_test(test_local),
		cmocka_unit_test(test_get_and_conditional),
		cmocka_unit_test(test_idn_host),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_redirects),
		cmocka_unit_test(test_size_cap),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_http_errors),
	};

	fetch_init();
	return cmocka_run_group_tests(tests, start_server, stop_server);
}
