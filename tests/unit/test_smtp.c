/*
 * test_smtp — the SMTP engine against tests/tools/smtpd.py on loopback.
 *
 * Each test starts the server it needs (fork/exec /usr/bin/python3), drives
 * smtp_run() and then asserts at the server's side, from the JSONL log the
 * server writes before it answers 250: which messages arrived, byte for
 * byte, with which envelope, over how many connections.  Skipped when
 * /usr/bin/python3 or its aiosmtpd module is missing.
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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "err.h"
#include "log.h"
#include "smtp.h"
#include "xalloc.h"

#define PYTHON	"/usr/bin/python3"
#define FROM	"bounce@example.org"

/* ---- fixture: a temp dir with a test PKI ------------------------------ */

struct fix {
	int	 skip;
	char	 dir[256];	/* temp dir, removed at the end */
	char	 srcdir[512];
	char	 ca[300], other_ca[300], cert[300], key[300];
	int	 seq;		/* numbers server dirs */
};

static int
run_cmd(const char *const argv[])
{
	pid_t pid;
	int st;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
group_setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	const char *src = getenv("SAMAIL_SRCDIR");
	char script[600], pki[300];
	const char *py[] = { PYTHON, "-c", "import aiosmtpd", NULL };

	snprintf(f->srcdir, sizeof(f->srcdir), "%s", src ? src : ".");
	*state = f;
	if (access(PYTHON, X_OK) != 0 || run_cmd(py) != 0) {
		f->skip = 1;
		return 0;
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/samail-test-smtp.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(script, sizeof(script), "%s/tests/tools/mkcerts.sh", f->srcdir);
	snprintf(pki, sizeof(pki), "%s/pki", f->dir);
	{
		const char *mk[] = { "/bin/sh", script, pki, NULL };

		if (run_cmd(mk) != 0)
			return -1;
	}
	snprintf(f->ca, sizeof(f->ca), "%s/ca.pem", pki);
	snprintf(f->other_ca, sizeof(f->other_ca), "%s/other-ca.pem", pki);
	snprintf(f->cert, sizeof(f->cert), "%s/server.pem", pki);
	snprintf(f->key, sizeof(f->key), "%s/server.key", pki);
	return 0;
}

static int
group_teardown(void **state)
{
	struct fix *f = *state;

	if (f->dir[0] != '\0') {
		const char *rm[] = { "/bin/rm", "-rf", f->dir, NULL };

		run_cmd(rm);
	}
	free(f);
	return 0;
}

#define SKIP_IF_NO_SERVER(f) do { if ((f)->skip) skip(); } while (0)

/* ---- the server ------------------------------------------------------- */

struct srv {
	pid_t	 pid;
	int	 port;
	char	 url[64];
	char	 log[400];
};

/* Start smtpd.py with extra flags (NULL-terminated); wait for its port. */
static void
srv_start(struct fix *f, struct srv *s, const char *scheme, ...)
{
	char dir[300], ready[350], script[600];
	const char *argv[40];
	int n = 0;
	va_list ap;
	const char *a;

	memset(s, 0, sizeof(*s));
	snprintf(dir, sizeof(dir), "%s/srv%d", f->dir, ++f->seq);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(s->log, sizeof(s->log), "%s/log.jsonl", dir);
	snprintf(script, sizeof(script), "%s/tests/tools/smtpd.py", f->srcdir);
	argv[n++] = PYTHON;
	argv[n++] = script;
	argv[n++] = "--ready";
	argv[n++] = ready;
	argv[n++] = "--log";
	argv[n++] = s->log;
	va_start(ap, scheme);
	while ((a = va_arg(ap, const char *)) != NULL && n < 36) {
		argv[n++] = a;
		if (strcmp(a, "--starttls") == 0 || strcmp(a, "--smtps") == 0) {
			argv[n++] = "--cert";
			argv[n++] = f->cert;
			argv[n++] = "--key";
			argv[n++] = f->key;
		}
	}
	va_end(ap);
	argv[n] = NULL;
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {	/* up to 20 s */
		FILE *fp = fopen(ready, "r");

		if (fp != NULL) {
			int ok = fscanf(fp, "%d", &s->port) == 1;

			fclose(fp);
			if (ok)
				break;
		}
		usleep(100000);
	}
	assert_true(s->port > 0);
	snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d", scheme, s->port);
}

static void
srv_stop(struct srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

/* A loopback port nobody listens on: connections are refused. */
static void
refused_url(char *url, size_t n)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(url, n, "smtp://127.0.0.1:%d", ntohs(sa.sin_port));
	close(fd);
}

/* What the server logged. */
struct got {
	int	 conn;
	int	 tls;
	char	 auth[64];
	char	 helo[128];
	char	 from[128];
	int	 nrcpt;
	char	 rcpt[128];
	unsigned char *data;
	size_t	 len;
	char	 qid[64];
};

struct seen {
	struct got *m;
	int	 n;
	int	 connects;
};

static unsigned char *
b64dec(const char *s, size_t *lenp)
{
	size_t n = strlen(s);
	unsigned char *out = xmalloc(n / 4 * 3 + 4);
	int k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);

	assert_true(k >= 0);
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	while (n > 0 && s[n - 1] == '=') {
		n--;
		k--;
	}
	*lenp = (size_t)k;
	return out;
}

static void
seen_load(const struct srv *s, struct seen *sn)
{
	FILE *fp = fopen(s->log, "r");
	char *line = NULL;
	size_t cap = 0;

	memset(sn, 0, sizeof(*sn));
	if (fp == NULL)
		return;
	while (getline(&line, &cap, fp) > 0) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je), *r;
		const char *ev;
		struct got *g;

		assert_non_null(j);
		ev = json_string_value(json_object_get(j, "event"));
		assert_non_null(ev);
		if (strcmp(ev, "connect") == 0) {
			sn->connects++;
			json_decref(j);
			continue;
		}
		sn->m = xreallocarray(sn->m, (size_t)sn->n + 1, sizeof(*sn->m));
		g = &sn->m[sn->n++];
		memset(g, 0, sizeof(*g));
		g->conn = (int)json_integer_value(json_object_get(j, "conn"));
		g->tls = json_is_true(json_object_get(j, "tls"));
		if (json_string_value(json_object_get(j, "auth")))
			snprintf(g->auth, sizeof(g->auth), "%s",
			    json_string_value(json_object_get(j, "auth")));
		snprintf(g->helo, sizeof(g->helo), "%s",
		    json_string_value(json_object_get(j, "helo")));
		snprintf(g->from, sizeof(g->from), "%s",
		    json_string_value(json_object_get(j, "mail_from")));
		r = json_object_get(j, "rcpt_tos");
		g->nrcpt = (int)json_array_size(r);
		if (g->nrcpt > 0)
			snprintf(g->rcpt, sizeof(g->rcpt), "%s",
			    json_string_value(json_array_get(r, 0)));
		snprintf(g->qid, sizeof(g->qid), "%s",
		    json_string_value(json_object_get(j, "queue_id")));
		g->data = b64dec(json_string_value(json_object_get(j,
		    "data_b64")), &g->len);
		json_decref(j);
	}
	free(line);
	fclose(fp);
}

static void
seen_free(struct seen *sn)
{
	for (int i = 0; i < sn->n; i++)
		free(sn->m[i].data);
	free(sn->m);
}

static const struct got *
seen_rcpt(const struct seen *sn, const char *rcpt, int *count)
{
	const struct got *g = NULL;

	*count = 0;
	for (int i = 0; i < sn->n; i++)
		if (strcmp(sn->m[i].rcpt, rcpt) == 0) {
			g = &sn->m[i];
			(*count)++;
		}
	return g;
}

/* ---- the caller's side: a queue of jobs ------------------------------- */

struct item {
	char	 rcpt[160];
	char	*data;
	size_t	 len;
	int	 handed;	/* times next_cb gave it out */
	int	 done;		/* times done_cb reported it */
	struct smtp_result res;
};

struct queue {
	pthread_mutex_t mu;
	struct item *it;
	int	 n;
	int	*order;		/* indices still to hand out */
	int	 head, tail;
	int	 calls;		/* next_cb calls */
	int	 fail_at;	/* next_cb call that returns -ERR_DB; 0 never */
	int	 requeue;	/* put UNSENT/RELAY_DOWN jobs back */
	int	 bad_done;	/* done_cb for a job not handed out */
	pid_t	 kill_pid;	/* server to SIGKILL ... */
	int	 kill_at;	/* ... at this next_cb call */
};

static void
q_init(struct queue *q, int n)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	q->it = xcalloc((size_t)n, sizeof(*q->it));
	q->order = xcalloc((size_t)n * 4 + 4, sizeof(int));
	q->n = n;
	for (int i = 0; i < n; i++)
		q->order[q->tail++] = i;
}

/* A message in wire form whose body says who it is for. */
static void
q_set(struct queue *q, int i, const char *rcpt, const char *body)
{
	struct item *it = &q->it[i];

	snprintf(it->rcpt, sizeof(it->rcpt), "%s", rcpt);
	free(it->data);
	it->data = xasprintf("From: News <news@example.org>\r\nTo: <%s>\r\n"
	    "Subject: test %d\r\nMessage-ID: <%d.test@example.org>\r\n\r\n%s",
	    rcpt, i, i, body);
	it->len = strlen(it->data);
}

static void
q_free(struct queue *q)
{
	for (int i = 0; i < q->n; i++)
		free(q->it[i].data);
	free(q->it);
	free(q->order);
	pthread_mutex_destroy(&q->mu);
}

static int
q_next(struct smtp_job *job, void *arg)
{
	struct queue *q = arg;
	struct item *it;
	int rc = SMTP_NEXT_NONE;

	pthread_mutex_lock(&q->mu);
	q->calls++;
	if (q->kill_pid > 0 && q->calls == q->kill_at) {
		kill(q->kill_pid, SIGKILL);
		waitpid(q->kill_pid, NULL, 0);
		q->kill_pid = 0;
	}
	if (q->fail_at > 0 && q->calls == q->fail_at)
		rc = -ERR_DB;
	else if (q->head < q->tail) {
		it = &q->it[q->order[q->head++]];
		it->handed++;
		job->rcpt = it->rcpt;
		job->data = it->data;
		job->len = it->len;
		job->ctx = it;
		rc = SMTP_NEXT_JOB;
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static void
q_done(const struct smtp_job *job, const struct smtp_result *res, void *arg)
{
	struct queue *q = arg;
	struct item *it = job->ctx;

	pthread_mutex_lock(&q->mu);
	if (it == NULL || it->done >= it->handed)
		q->bad_done++;
	else {
		it->done++;
		it->res = *res;
		if (q->requeue && (res->outcome == SMTP_UNSENT ||
		    res->outcome == SMTP_RELAY_DOWN))
			q->order[q->tail++] = (int)(it - q->it);
	}
	pthread_mutex_unlock(&q->mu);
}

static int
q_count(struct queue *q, enum smtp_outcome o)
{
	int n = 0;

	for (int i = 0; i < q->n; i++)
		if (q->it[i].done > 0 && q->it[i].res.outcome == o)
			n++;
	return n;
}

/* Every job handed out was reported exactly once. */
static void
q_check_accounting(struct queue *q)
{
	assert_int_equal(q->bad_done, 0);
	for (int i = 0; i < q->n; i++)
		assert_int_equal(q->it[i].done, q->it[i].handed);
}

static void
opts_init(struct smtp_opts *o, const char **relays, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->relays = relays;
	o->nrelays = n;
	o->envelope_from = FROM;
	o->helo = "samail.test";
	o->max_connections = 1;
	o->connect_timeout_ms = 5000;
	o->timeout_ms = 20000;
}

/* ---- pure functions --------------------------------------------------- */

static void
test_addr_check(void **state)
{
	static const char *const bad[] = {
		"", "noat", "@example.org", "user@", "a@b@c", "a b@example.org",
		"a@example.org\r\nRCPT TO:<evil@example.net>", "<a@example.org>",
		"a@example.org> NOTIFY=NEVER", "a\t@example.org",
		"\xe6\x97\xa5@example.jp", "a@exa\x7fmple.org",
	};
	char longaddr[300];

	(void)state;
	assert_int_equal(smtp_addr_check("taro@example.jp", NULL), 0);
	assert_int_equal(smtp_addr_check("a.b+tag@xn--wgv71a119e.jp", NULL), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(smtp_addr_check(bad[i], NULL), -ERR_INVAL);
	memset(longaddr, 'a', sizeof(longaddr));
	memcpy(longaddr + 250, "@b.jp", 6);
	assert_int_equal(smtp_addr_check(longaddr, NULL), -ERR_INVAL);
}

static void
test_queue_id(void **state)
{
	static const struct { const char *text, *id; } t[] = {
		{ "Ok: queued as 4Xyz9Kq1Lmz", "4Xyz9Kq1Lmz" },
		{ "queued as 6ECA4C5B17", "6ECA4C5B17" },
		{ "OK id=1rAbCd-000Xyz-9Q", "1rAbCd-000Xyz-9Q" },
		{ "u9K3AbCd012345 Message accepted for delivery",
		  "u9K3AbCd012345" },
		{ "OK 1700000000 d9443c01a7336-1f3a5b7c9e5sm1234567pla.42 - gsmtp",
		  "d9443c01a7336-1f3a5b7c9e5sm1234567pla.42" },
		{ "<a@b> [InternalId=12345678901234, Hostname=X.outlook.com] "
		  "Queued mail for delivery", "12345678901234" },
		{ "Ok 0100018a6b2f1c3d-5e6f7a8b-0000-000000", 
		  "0100018a6b2f1c3d-5e6f7a8b-0000-000000" },
		{ "Ok", "" },
		{ "OK message accepted", "" },
		{ "Great success", "" },
		{ "", "" },
	};
	char out[SMTP_QUEUE_ID_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		smtp_queue_id(t[i].text, out, sizeof(out));
		assert_string_equal(out, t[i].id);
	}
	/* Too long for the buffer: nothing rather than a truncated id. */
	smtp_queue_id("queued as ABCDEFGHIJ", out, 5);
	assert_string_equal(out, "");
}

static void
test_bad_options(void **state)
{
	struct fix *f = *state;
	const char *relays[1];
	struct smtp_opts o;
	struct queue q;
	struct err e = ERR_INIT;
	static const char *const badurl[] = {
		"http://127.0.0.1:25", "smtp://user:pw@127.0.0.1:25",
		"smtp://127.0.0.1:25/path", "smtp://127.0.0.1:25?x=1",
		"file:///etc/passwd", "not a url",
	};

	(void)f;
	q_init(&q, 1);
	q_set(&q, 0, "a@example.jp", "x\r\n");
	relays[0] = "smtp://127.0.0.1:1";
	opts_init(&o, relays, 1);
	o.envelope_from = "bounce@example.org\r\nRSET";
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, "envelope sender"));
	opts_init(&o, relays, 1);
	o.cafile = "/nonexistent/ca.pem";
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, "/nonexistent/ca.pem"));
	opts_init(&o, relays, 1);
	o.helo = "bad helo\r\n";
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), -ERR_CONFIG);
	for (size_t i = 0; i < sizeof(badurl) / sizeof(badurl[0]); i++) {
		relays[0] = badurl[i];
		opts_init(&o, relays, 1);
		assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e),
		    -ERR_CONFIG);
	}
	opts_init(&o, relays, 0);
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), -ERR_CONFIG);
	/* Nothing was ever asked for. */
	assert_int_equal(q.calls, 0);
	q_free(&q);
}

/* ---- sending ---------------------------------------------------------- */

/* Bodies that a careless sender would damage. */
static char *
tricky_body(int i)
{
	struct { char *p; size_t n; } b = { NULL, 0 };
	FILE *fp = open_memstream(&b.p, &b.n);

	fprintf(fp, "Message %d\r\n.\r\n..two dots\r\n.leading dot\r\n", i);
	fprintf(fp, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e (UTF-8)\r\n");
	fprintf(fp, "trailing space \r\n\r\n\r\n");
	for (int k = 0; k < (i % 3) * 150; k++)	/* up to ~20 KB */
		fprintf(fp, "line %04d of a longer message for %d ..........\r\n",
		    k, i);
	fprintf(fp, ".\r\n");	/* a lone dot as the last line too */
	fclose(fp);
	return b.p;
}

/* n messages with tricky bodies, to user0@example.jp and on. */
static void
q_init_tricky(struct queue *q, int n)
{
	char rcpt[64];

	q_init(q, n);
	for (int i = 0; i < n; i++) {
		char *body = tricky_body(i);

		snprintf(rcpt, sizeof(rcpt), "user%d@example.jp", i);
		q_set(q, i, rcpt, body);
		free(body);
	}
}

static void
test_send_many_reused(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];
	int n = 40, cnt;

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	q_init_tricky(&q, n);
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	o.max_connections = 3;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), n);
	assert_int_equal(sn.n, n);
	for (int i = 0; i < n; i++) {
		const struct item *it = &q.it[i];
		const struct got *g = seen_rcpt(&sn, it->rcpt, &cnt);

		assert_int_equal(cnt, 1);
		assert_int_equal(g->nrcpt, 1);
		assert_string_equal(g->from, FROM);
		assert_string_equal(g->helo, "samail.test");
		assert_int_equal(g->len, it->len);
		assert_memory_equal(g->data, it->data, it->len);
		assert_int_equal(it->res.code, 250);
		assert_string_equal(it->res.status, "2.0.0");
		assert_string_equal(it->res.queue_id, g->qid);
		assert_int_equal(it->res.relay, 0);
		assert_int_equal(it->res.phase, SMTP_PHASE_CONTENT);
		assert_non_null(strstr(it->res.text, g->qid));
	}
	/* Connections were reused: at most one per worker. */
	assert_true(sn.connects >= 1 && sn.connects <= 3);
	seen_free(&sn);
	q_free(&q);
}

/*
 * before_end: asked once per message just before the end of its data,
 * the data delivered intact around the bytes held back (dots, a tiny
 * message); refused, the message is dropped mid-data (the relay never
 * delivers it), reported SMTP_UNSENT, and the others still go.
 */
static struct queue *be_q;
static int be_refuse = -1;	/* the item whose end is refused */
static int be_calls[16];

static int
be_hook(const struct smtp_job *job)
{
	const struct item *it = job->ctx;
	int i = (int)(it - be_q->it);

	pthread_mutex_lock(&be_q->mu);
	be_calls[i]++;
	pthread_mutex_unlock(&be_q->mu);
	return i == be_refuse ? -ERR_IO : 0;
}

static int
be_next(struct smtp_job *job, void *arg)
{
	int rc = q_next(job, arg);

	if (rc == SMTP_NEXT_JOB)
		job->before_end = be_hook;
	return rc;
}

static void
test_before_end(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];
	int n = 12, cnt;

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	q_init_tricky(&q, n);
	/* Messages of 2 and 3 bytes: all of it is the held-back end. */
	free(q.it[10].data);
	q.it[10].data = xstrdup("\r\n");
	q.it[10].len = 2;
	free(q.it[11].data);
	q.it[11].data = xstrdup("a\r\n");
	q.it[11].len = 3;
	be_q = &q;
	be_refuse = 4;
	memset(be_calls, 0, sizeof(be_calls));
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	o.max_connections = 2;
	assert_int_equal(smtp_run(&o, be_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), n - 1);
	assert_int_equal(q_count(&q, SMTP_UNSENT), 1);
	assert_int_equal(q.it[4].res.outcome, SMTP_UNSENT);
	assert_int_equal(sn.n, n - 1);
	for (int i = 0; i < n; i++) {
		const struct item *it = &q.it[i];
		const struct got *g = seen_rcpt(&sn, it->rcpt, &cnt);

		assert_int_equal(be_calls[i], 1);
		if (i == 4) {
			assert_int_equal(cnt, 0);
			continue;
		}
		assert_int_equal(cnt, 1);
		assert_int_equal(g->len, it->len);
		assert_memory_equal(g->data, it->data, it->len);
	}
	be_q = NULL;
	seen_free(&sn);
	q_free(&q);
}

/*
 * libcurl (7.x) ends the upload once the bytes written, dots doubled
 * included, reach CURLOPT_INFILESIZE: with the last 2 bytes held back and
 * exactly two lines starting with a dot before them, that happened before
 * before_end() was asked, and the message went without its last bytes.
 */
static void
test_before_end_two_dots(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];
	static const char *bodies[] = {
		"Subject: a\r\n\r\n.one\r\n.two\r\nend\r\n",
		"Subject: b\r\n\r\n.one\r\nend\r\n",
		"Subject: c\r\n\r\n.1\r\n.2\r\n.3\r\nend\r\n",
		"Subject: d\r\n\r\nmid\r\n.\r\n..\r\n",
	};
	int n = 7, cnt;

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	q_init(&q, n);
	for (int i = 0; i < n - 1; i++) {
		char rcpt[64], *big = NULL;
		size_t bn = 0;
		FILE *fp;

		snprintf(rcpt, sizeof(rcpt), "dots%d@example.jp", i);
		if (i < 4) {
			q_set(&q, i, rcpt, bodies[i]);
			continue;
		}
		/* Over libcurl's 64 KB upload buffer, two dots in its
		 * middle; then a hundred lines that start with one. */
		fp = open_memstream(&big, &bn);
		for (int k = 0; k < (i == 4 ? 3000 : 100); k++)
			fprintf(fp, i == 4 && k != 1500 && k != 2500 ?
			    "line %04d of a message over 64 KB .......\r\n" :
			    ".%04d\r\n", k);
		fclose(fp);
		q_set(&q, i, rcpt, big);
		free(big);
	}
	/* Data that starts with a dot: counted as one libcurl may double
	 * whether or not it does; the data still ends whole. */
	snprintf(q.it[6].rcpt, sizeof(q.it[6].rcpt), "dots6@example.jp");
	q.it[6].data = xstrdup(".lead\r\nSubject: e\r\n\r\n..two\r\nend\r\n");
	q.it[6].len = strlen(q.it[6].data);
	be_q = &q;
	be_refuse = -1;
	memset(be_calls, 0, sizeof(be_calls));
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	o.max_connections = 1;
	assert_int_equal(smtp_run(&o, be_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	for (int i = 0; i < n; i++) {
		const struct item *it = &q.it[i];
		const struct got *g = seen_rcpt(&sn, it->rcpt, &cnt);

		assert_int_equal(be_calls[i], 1);
		assert_int_equal(cnt, 1);
		assert_int_equal(g->len, it->len);
		assert_memory_equal(g->data, it->data, it->len);
	}
	be_q = NULL;
	seen_free(&sn);
	q_free(&q);
}

struct expect {
	const char *rcpt;
	enum smtp_outcome outcome;
	enum smtp_phase phase;
	int code;
	const char *status;
	int delivered;
};

static void
test_every_reply(void **state)
{
	struct fix *f = *state;
	static const struct expect ex[] = {
		{ "ok1@example.jp", SMTP_SENT, SMTP_PHASE_CONTENT, 250, "2.0.0", 1 },
		{ "nouser@example.jp", SMTP_BAD_RECIPIENT, SMTP_PHASE_RCPT, 550,
		  "5.1.1", 0 },
		{ "ok2@example.jp", SMTP_SENT, SMTP_PHASE_CONTENT, 250, "2.0.0", 1 },
		{ "bare550@example.jp", SMTP_BAD_RECIPIENT, SMTP_PHASE_RCPT, 550,
		  "", 0 },
		{ "rcpt4xx@example.jp", SMTP_TEMPFAIL, SMTP_PHASE_RCPT, 450,
		  "4.7.1", 0 },
		{ "rcpt5xx@example.jp", SMTP_PERMFAIL, SMTP_PHASE_RCPT, 554,
		  "5.7.1", 0 },
		{ "refusedata@example.jp", SMTP_PERMFAIL, SMTP_PHASE_DATA, 554,
		  "5.5.1", 0 },
		{ "data4xx@example.jp", SMTP_TEMPFAIL, SMTP_PHASE_CONTENT, 451,
		  "4.3.0", 0 },
		{ "data5xx@example.jp", SMTP_PERMFAIL, SMTP_PHASE_CONTENT, 554,
		  "5.7.1", 0 },
		{ "datanouser@example.jp", SMTP_BAD_RECIPIENT, SMTP_PHASE_CONTENT,
		  550, "5.1.1", 0 },
		{ "dropmid@example.jp", SMTP_TEMPFAIL, SMTP_PHASE_CONTENT, 0, "", 0 },
		{ "ok3@example.jp", SMTP_SENT, SMTP_PHASE_CONTENT, 250, "2.0.0", 1 },
		{ "dropend@example.jp", SMTP_TEMPFAIL, SMTP_PHASE_CONTENT, 0, "", 0 },
		{ "multiline@example.jp", SMTP_SENT, SMTP_PHASE_CONTENT, 250,
		  "2.0.0", 1 },
		{ "ugly@example.jp", SMTP_SENT, SMTP_PHASE_CONTENT, 250, "2.0.0", 1 },
		{ "ok4@example.jp", SMTP_SENT, SMTP_PHASE_CONTENT, 250, "2.0.0", 1 },
	};
	int n = (int)(sizeof(ex) / sizeof(ex[0])), cnt, delivered = 0;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	q_init(&q, n);
	for (int i = 0; i < n; i++) {
		char *body = NULL;

		if (strncmp(ex[i].rcpt, "dropmid", 7) == 0) {
			/* Big enough to be still on its way when the drop comes. */
			body = xmalloc(400 * 1000 + 1);
			for (int k = 0; k < 4000; k++)
				memcpy(body + k * 100, "0123456789012345678901234567890"
				    "12345678901234567890123456789012345678901234567890"
				    "12345678901234567\r\n", 100);
			body[400 * 1000] = '\0';
		}
		q_set(&q, i, ex[i].rcpt, body != NULL ? body : "Hello\r\n");
		free(body);
	}
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	for (int i = 0; i < n; i++) {
		const struct smtp_result *r = &q.it[i].res;
		const struct got *g = seen_rcpt(&sn, ex[i].rcpt, &cnt);

		print_message("%s: %s %d %s %s\n", ex[i].rcpt,
		    smtp_outcome_name(r->outcome), r->code, r->status, r->text);
		assert_int_equal(r->outcome, ex[i].outcome);
		assert_int_equal(r->phase, ex[i].phase);
		assert_int_equal(r->code, ex[i].code);
		assert_string_equal(r->status, ex[i].status);
		assert_int_equal(cnt, ex[i].delivered);
		assert_true(r->text[0] != '\0');
		for (const char *p = r->text; *p != '\0'; p++)
			assert_true(*p >= 0x20 && *p < 0x7f);
		if (ex[i].delivered) {
			assert_string_equal(r->queue_id, g->qid);
			delivered++;
		} else
			assert_string_equal(r->queue_id, "");
	}
	assert_int_equal(sn.n, delivered);
	/* The reply text, cleaned: no code, no status, no control bytes. */
	assert_string_equal(q.it[1].res.text, "<nouser@example.jp>: Recipient "
	    "address rejected: User unknown in virtual mailbox table");
	/* A multi-line reply becomes one line; the id is on the last. */
	assert_true(strncmp(q.it[13].res.text, "Ok: message accepted queued "
	    "as ", 31) == 0);
	assert_int_equal(strlen(q.it[13].res.queue_id), 10);
	/* Tab, DEL and UTF-8 from the relay do not reach the database. */
	assert_true(strncmp(q.it[14].res.text, "Ok: tab del ?????? queued as ",
	    29) == 0);
	seen_free(&sn);
	q_free(&q);
}


/*
 * A proxy in the environment (all_proxy, smtp_proxy: /etc/environment
 * reaches cron through pam_env) is not for mail: libcurl would tunnel
 * the SMTP session through it with CONNECT, which an HTTP proxy refuses
 * (or worse, allows: the relay then sees the proxy's address, not ours).
 */
static void
test_env_proxy_ignored(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];
	char dead[64];
	int rc;
	static const char *const vars[] = {
		"all_proxy", "ALL_PROXY", "smtp_proxy", "SMTP_PROXY",
	};

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	refused_url(dead, sizeof(dead));
	memcpy(dead, "http", 4);	/* smtp://... -> http://... */
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		setenv(vars[i], dead, 1);
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	q_init(&q, 1);
	q_set(&q, 0, "proxy@example.jp", "hello\r\n");
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	rc = smtp_run(&o, q_next, q_done, &q, &e);
	/* Unset before any assertion: the tests after this one must not
	 * inherit the proxy. */
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	srv_stop(&s);
	assert_int_equal(rc, 0);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), 1);
	assert_int_equal(sn.n, 1);
	seen_free(&sn);
	q_free(&q);
}

static void
test_stalled_relay_times_out(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];
	int cnt;
	time_t t0;

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	q_init(&q, 2);
	q_set(&q, 0, "stall@example.jp", "never answered\r\n");
	q_set(&q, 1, "after@example.jp", "next one\r\n");
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	o.timeout_ms = 1500;
	t0 = time(NULL);
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	/* The timeout bounds the wait, also for the QUIT to the stalled
	 * connection (libcurl's own default would wait 120 s). */
	assert_true(time(NULL) - t0 < 15);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	/* The data went out and no answer came: may or may not be queued. */
	print_message("stall: %s\n", q.it[0].res.text);
	assert_int_equal(q.it[0].res.outcome, SMTP_TEMPFAIL);
	assert_int_equal(q.it[0].res.phase, SMTP_PHASE_CONTENT);
	assert_int_equal(q.it[0].res.code, 0);
	assert_non_null(strstr(q.it[0].res.text, "timeout"));
	/* The handle recovered: the next message went on a new connection. */
	assert_int_equal(q.it[1].res.outcome, SMTP_SENT);
	assert_non_null(seen_rcpt(&sn, "after@example.jp", &cnt));
	assert_int_equal(cnt, 1);
	assert_int_equal(sn.connects, 2);
	seen_free(&sn);
	q_free(&q);
}

static void
test_silent_greeting_is_relay_down(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", "--stall-greeting", NULL);
	q_init(&q, 3);
	for (int i = 0; i < 3; i++)
		q_set(&q, i, "a@example.jp", "x\r\n");
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	o.connect_timeout_ms = 1000;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), -ERR_NET);
	srv_stop(&s);
	q_check_accounting(&q);
	/* The first job is handed back untried and the run stops. */
	assert_int_equal(q.calls, 1);
	assert_int_equal(q.it[0].res.outcome, SMTP_RELAY_DOWN);
	assert_int_equal(q.it[0].res.phase, SMTP_PHASE_CONNECT);
	assert_non_null(strstr(e.msg, s.url));
	q_free(&q);
}

static void
test_failover_to_second_relay(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[2];
	char down[64], rcpt[64];
	int n = 12, cnt;

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	refused_url(down, sizeof(down));
	q_init(&q, n);
	for (int i = 0; i < n; i++) {
		snprintf(rcpt, sizeof(rcpt), "fo%d@example.jp", i);
		q_set(&q, i, rcpt, "failover\r\n");
	}
	relays[0] = down;
	relays[1] = s.url;
	opts_init(&o, relays, 2);
	o.max_connections = 3;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), n);
	assert_int_equal(sn.n, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(q.it[i].res.relay, 1);
		assert_non_null(seen_rcpt(&sn, q.it[i].rcpt, &cnt));
		assert_int_equal(cnt, 1);
	}
	seen_free(&sn);
	q_free(&q);
}

static void
test_all_relays_down(void **state)
{
	struct fix *f = *state;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[2];
	char d1[64], d2[64];
	int handed = 0;

	SKIP_IF_NO_SERVER(f);
	refused_url(d1, sizeof(d1));
	refused_url(d2, sizeof(d2));
	q_init(&q, 20);
	for (int i = 0; i < 20; i++)
		q_set(&q, i, "a@example.jp", "x\r\n");
	relays[0] = d1;
	relays[1] = d2;
	opts_init(&o, relays, 2);
	o.max_connections = 2;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), -ERR_NET);
	assert_int_equal(err_exitcode(-ERR_NET), 69);
	q_check_accounting(&q);
	/* Each worker gave back what it held, then the run stopped. */
	for (int i = 0; i < q.n; i++)
		if (q.it[i].handed) {
			handed++;
			assert_int_equal(q.it[i].res.outcome, SMTP_RELAY_DOWN);
		}
	assert_true(handed >= 1 && handed <= 2);
	assert_non_null(strstr(e.msg, d1));
	assert_non_null(strstr(e.msg, d2));
	q_free(&q);
}

static void
test_refused_at_the_boundary(void **state)
{
	struct fix *f = *state;
	static const char *const rcpts[] = {
		"a@example.jp\r\nRCPT TO:<evil@example.net>",
		"a b@example.jp", "<a@example.jp>", "noat", "a@b@example.jp",
		"",
	};
	int nr = (int)(sizeof(rcpts) / sizeof(rcpts[0])), n = nr + 4;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	q_init(&q, n);
	for (int i = 0; i < nr; i++)
		q_set(&q, i, rcpts[i], "x\r\n");
	q_set(&q, nr, "lf@example.jp", "bare\nLF\r\n.\n");
	q_set(&q, nr + 1, "cr@example.jp", "bare\rCR\r\n");
	q_set(&q, nr + 2, "nul@example.jp", "x\r\n");
	q.it[nr + 2].data[q.it[nr + 2].len - 2] = '\0';
	q_set(&q, nr + 3, "good@example.jp", "fine\r\n");
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	for (int i = 0; i < n - 1; i++) {
		assert_int_equal(q.it[i].res.outcome, SMTP_PERMFAIL);
		assert_int_equal(q.it[i].res.phase, SMTP_PHASE_NONE);
		assert_int_equal(q.it[i].res.code, 0);
		assert_int_equal(q.it[i].res.relay, -1);
		assert_null(strchr(q.it[i].res.text, '\r'));
		assert_null(strchr(q.it[i].res.text, '\n'));
	}
	assert_non_null(strstr(q.it[nr].res.text, "bare LF"));
	assert_int_equal(q.it[n - 1].res.outcome, SMTP_SENT);
	/* Only the good one reached the relay; no injected recipient. */
	assert_int_equal(sn.n, 1);
	assert_string_equal(sn.m[0].rcpt, "good@example.jp");
	seen_free(&sn);
	q_free(&q);
}

/* Send one message with o to a fresh server started with the flags. */
static int
send_one(struct fix *f, struct smtp_opts *o, const char *scheme,
    struct queue *q, struct seen *sn, struct err *e, ...)
{
	struct srv s;
	const char *relays[1];
	const char *fl[8] = { NULL };
	va_list ap;
	int rc, k = 0;

	va_start(ap, e);
	while (k < 7 && (fl[k] = va_arg(ap, const char *)) != NULL)
		k++;
	va_end(ap);
	srv_start(f, &s, scheme, fl[0], fl[1], fl[2], fl[3], fl[4], fl[5],
	    fl[6], NULL);
	q_init(q, 1);
	q_set(q, 0, "tls@example.jp", "secret stuff\r\n");
	relays[0] = s.url;
	o->relays = relays;
	o->nrelays = 1;
	rc = smtp_run(o, q_next, q_done, q, e);
	srv_stop(&s);
	seen_load(&s, sn);
	q_check_accounting(q);
	return rc;
}

static void
test_tls(void **state)
{
	struct fix *f = *state;
	struct smtp_opts o;
	struct queue q;
	struct seen sn;
	struct err e = ERR_INIT;

	SKIP_IF_NO_SERVER(f);
	/* STARTTLS offered, verified against the test CA. */
	opts_init(&o, NULL, 0);
	o.cafile = f->ca;
	assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e, "--starttls",
	    NULL), 0);
	assert_int_equal(q.it[0].res.outcome, SMTP_SENT);
	assert_int_equal(sn.n, 1);
	assert_true(sn.m[0].tls);
	seen_free(&sn);
	q_free(&q);

	/* starttls = auto against a relay without it: plain is fine. */
	opts_init(&o, NULL, 0);
	assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e, NULL), 0);
	assert_int_equal(q.it[0].res.outcome, SMTP_SENT);
	assert_false(sn.m[0].tls);
	seen_free(&sn);
	q_free(&q);

	/* starttls = required against a relay without it: nothing sent,
	 * and it is our set-up that does not fit. */
	opts_init(&o, NULL, 0);
	o.starttls = SMTP_STARTTLS_REQUIRED;
	assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e, NULL),
	    -ERR_CONFIG);
	assert_int_equal(q.it[0].res.outcome, SMTP_RELAY_DOWN);
	assert_int_equal(sn.n, 0);
	assert_non_null(strstr(e.msg, "does not offer STARTTLS"));
	print_message("required, not offered: %s\n", e.msg);
	seen_free(&sn);
	q_free(&q);

	/* STARTTLS with a certificate from another CA: refused. */
	opts_init(&o, NULL, 0);
	o.cafile = f->other_ca;
	o.starttls = SMTP_STARTTLS_REQUIRED;
	assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e, "--starttls",
	    NULL), -ERR_NET);
	assert_int_equal(q.it[0].res.outcome, SMTP_RELAY_DOWN);
	assert_int_equal(sn.n, 0);
	print_message("wrong CA: %s\n", e.msg);
	seen_free(&sn);
	q_free(&q);

	/* Even with starttls = auto a failed verification is not skipped. */
	opts_init(&o, NULL, 0);
	o.cafile = f->other_ca;
	assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e, "--starttls",
	    NULL), -ERR_NET);
	assert_int_equal(sn.n, 0);
	seen_free(&sn);
	q_free(&q);

	/* smtps:// with the right CA, the wrong CA, and insecure. */
	opts_init(&o, NULL, 0);
	o.cafile = f->ca;
	assert_int_equal(send_one(f, &o, "smtps", &q, &sn, &e, "--smtps",
	    NULL), 0);
	assert_int_equal(q.it[0].res.outcome, SMTP_SENT);
	assert_true(sn.m[0].tls);
	seen_free(&sn);
	q_free(&q);

	opts_init(&o, NULL, 0);
	o.cafile = f->other_ca;
	assert_int_equal(send_one(f, &o, "smtps", &q, &sn, &e, "--smtps",
	    NULL), -ERR_NET);
	assert_int_equal(q.it[0].res.outcome, SMTP_RELAY_DOWN);
	assert_int_equal(sn.n, 0);
	seen_free(&sn);
	q_free(&q);

	opts_init(&o, NULL, 0);
	o.cafile = f->other_ca;
	o.insecure = 1;
	assert_int_equal(send_one(f, &o, "smtps", &q, &sn, &e, "--smtps",
	    NULL), 0);
	assert_int_equal(q.it[0].res.outcome, SMTP_SENT);
	seen_free(&sn);
	q_free(&q);

	/* The relay insists on STARTTLS; we do it when offered. */
	opts_init(&o, NULL, 0);
	o.cafile = f->ca;
	assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e, "--starttls",
	    "--require-starttls", NULL), 0);
	assert_int_equal(q.it[0].res.outcome, SMTP_SENT);
	assert_true(sn.m[0].tls);
	seen_free(&sn);
	q_free(&q);
}

static void
test_auth(void **state)
{
	struct fix *f = *state;
	static const char *const mech[] = { "PLAIN", "LOGIN" };
	struct smtp_opts o;
	struct queue q;
	struct seen sn;
	struct err e = ERR_INIT;

	SKIP_IF_NO_SERVER(f);
	for (int i = 0; i < 2; i++) {
		opts_init(&o, NULL, 0);
		o.cafile = f->ca;
		o.username = "samail";
		o.password = "s3cret pass";
		assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e,
		    "--starttls", "--auth", "samail:s3cret pass", "--auth-mech",
		    mech[i], NULL), 0);
		assert_int_equal(q.it[0].res.outcome, SMTP_SENT);
		assert_int_equal(sn.n, 1);
		assert_string_equal(sn.m[0].auth, "samail");
		assert_true(sn.m[0].tls);
		seen_free(&sn);
		q_free(&q);
	}
	/* Wrong password: the relay is unusable, nothing goes out; a
	 * set-up error that names the user. */
	opts_init(&o, NULL, 0);
	o.cafile = f->ca;
	o.username = "samail";
	o.password = "wrong";
	o.password_source = "'/etc/samail/pw'";
	assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e, "--starttls",
	    "--auth", "samail:s3cret pass", NULL), -ERR_CONFIG);
	assert_int_equal(q.it[0].res.outcome, SMTP_RELAY_DOWN);
	assert_int_equal(sn.n, 0);
	assert_non_null(strstr(e.msg, "refused the login of 'samail' (535"));
	assert_non_null(strstr(e.msg, "'/etc/samail/pw'"));
	assert_null(strstr(e.msg, "wrong"));	/* no password in messages */
	print_message("bad password: %s\n", e.msg);
	seen_free(&sn);
	q_free(&q);
	/* Credentials never go over a plain connection. */
	opts_init(&o, NULL, 0);
	o.username = "samail";
	o.password = "s3cret pass";
	assert_int_equal(send_one(f, &o, "smtp", &q, &sn, &e, NULL),
	    -ERR_CONFIG);
	assert_int_equal(sn.n, 0);
	seen_free(&sn);
	q_free(&q);
}

struct stopper {
	atomic_int	*flag;
	int		 ms;
};

static void *
stop_later(void *p)
{
	struct stopper *st = p;

	usleep((useconds_t)st->ms * 1000);
	atomic_store(st->flag, 1);
	return NULL;
}

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_rate_cap(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];
	atomic_int stop = 0;
	struct stopper st = { &stop, 2000 };
	pthread_t tid;
	double t0, elapsed;
	int sent, n = 200;

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	q_init(&q, n);
	for (int i = 0; i < n; i++)
		q_set(&q, i, "rate@example.jp", "x\r\n");
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	o.max_connections = 4;
	o.rate_per_minute = 120;	/* one every 0.5 s */
	o.stop = &stop;
	t0 = mono();
	assert_int_equal(pthread_create(&tid, NULL, stop_later, &st), 0);
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	elapsed = mono() - t0;
	pthread_join(tid, NULL);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	sent = q_count(&q, SMTP_SENT);
	print_message("rate 120/min: %d sent in %.2f s\n", sent, elapsed);
	/*
	 * Uncapped, loopback takes hundreds in 2 s.  At 2 a second, the
	 * run can have started at most 2 * elapsed + 1 messages.
	 */
	assert_true(sent >= 1);
	assert_true(sent <= (int)(2 * elapsed) + 1);
	assert_int_equal(sn.n, sent);
	/* What was taken but not sent when the stop came is handed back. */
	assert_int_equal(q_count(&q, SMTP_UNSENT) + sent, q.calls);
	seen_free(&sn);
	q_free(&q);
}

static void
test_limits_and_stops(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];
	atomic_int stop = 1;

	SKIP_IF_NO_SERVER(f);
	srv_start(f, &s, "smtp", NULL);
	relays[0] = s.url;

	/* max_messages: exactly that many taken and sent. */
	q_init(&q, 30);
	for (int i = 0; i < 30; i++)
		q_set(&q, i, "lim@example.jp", "x\r\n");
	opts_init(&o, relays, 1);
	o.max_connections = 3;
	o.max_messages = 7;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), 7);
	assert_int_equal(q.calls, 7);
	q_free(&q);

	/* next_cb fails on its 3rd call: the run stops with its error. */
	q_init(&q, 30);
	for (int i = 0; i < 30; i++)
		q_set(&q, i, "err@example.jp", "x\r\n");
	q.fail_at = 3;
	opts_init(&o, relays, 1);
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), -ERR_DB);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), 2);
	q_free(&q);

	/* Stop flag already set: nothing is taken. */
	q_init(&q, 3);
	for (int i = 0; i < 3; i++)
		q_set(&q, i, "stop@example.jp", "x\r\n");
	opts_init(&o, relays, 1);
	o.stop = &stop;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	assert_int_equal(q.calls, 0);
	q_free(&q);

	srv_stop(&s);
	seen_load(&s, &sn);
	assert_int_equal(sn.n, 9);
	seen_free(&sn);
}

static void
test_relay_limits(void **state)
{
	struct fix *f = *state;
	struct srv s;
	struct seen sn;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[1];
	char rcpt[64];
	int n = 9, cnt, sent, handed_twice;

	SKIP_IF_NO_SERVER(f);
	/*
	 * 421 at MAIL after 2 messages per connection: the message was not
	 * handed over, so it goes again on a new connection, not deferred.
	 */
	srv_start(f, &s, "smtp", "--max-msgs", "2", NULL);
	q_init(&q, n);
	for (int i = 0; i < n; i++) {
		snprintf(rcpt, sizeof(rcpt), "mm%d@example.jp", i);
		q_set(&q, i, rcpt, "x\r\n");
	}
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), n);
	assert_int_equal(sn.n, n);
	assert_int_equal(sn.connects, (n + 1) / 2);
	seen_free(&sn);
	q_free(&q);

	/*
	 * One connection per client (421 greeting beyond it), three
	 * workers, a slow relay: the extra workers back off, see the one
	 * connection still busy, retire and hand their jobs back (UNSENT);
	 * the caller queues them again and the remaining worker sends them.
	 * The run neither fails over nor reports the relay down.
	 */
	srv_start(f, &s, "smtp", "--max-conns", "1", NULL);
	q_init(&q, n);
	for (int i = 0; i < n; i++) {
		snprintf(rcpt, sizeof(rcpt), "slow%d@example.jp", i);
		q_set(&q, i, rcpt, "x\r\n");
	}
	q.requeue = 1;
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	o.max_connections = 3;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	sent = q_count(&q, SMTP_SENT);
	handed_twice = 0;
	for (int i = 0; i < n; i++)
		handed_twice += q.it[i].handed == 2;
	print_message("max-conns 1: %d sent, %d handed back and sent\n", sent,
	    handed_twice);
	assert_int_equal(sent, n);
	assert_int_equal(handed_twice, 2);
	assert_int_equal(sn.n, n);
	assert_int_equal(sn.connects, 1);
	for (int i = 0; i < n; i++) {
		seen_rcpt(&sn, q.it[i].rcpt, &cnt);
		assert_int_equal(cnt, 1);
	}
	seen_free(&sn);
	q_free(&q);

	/* A fast relay: a finished worker frees its slot for the others. */
	srv_start(f, &s, "smtp", "--max-conns", "1", NULL);
	q_init(&q, n);
	for (int i = 0; i < n; i++) {
		snprintf(rcpt, sizeof(rcpt), "mc%d@example.jp", i);
		q_set(&q, i, rcpt, "x\r\n");
	}
	relays[0] = s.url;
	opts_init(&o, relays, 1);
	o.max_connections = 3;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	srv_stop(&s);
	seen_load(&s, &sn);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), n);
	assert_int_equal(sn.n, n);
	seen_free(&sn);
	q_free(&q);
}

static void
test_relay_dies_mid_run(void **state)
{
	struct fix *f = *state;
	struct srv a, b;
	struct seen sa, sb;
	struct queue q;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	const char *relays[2];
	char rcpt[64];
	int n = 40, ca, cb;

	SKIP_IF_NO_SERVER(f);
	/*
	 * The primary is killed (-9) after 10 jobs were taken, with three
	 * connections open to it.  The backup takes over; nothing is lost
	 * and nothing is doubled but what was in flight when it died.
	 */
	srv_start(f, &a, "smtp", NULL);
	srv_start(f, &b, "smtp", NULL);
	q_init(&q, n);
	for (int i = 0; i < n; i++) {
		snprintf(rcpt, sizeof(rcpt), "die%d@example.jp", i);
		q_set(&q, i, rcpt, "relay dies\r\n");
	}
	q.kill_pid = a.pid;
	q.kill_at = 11;
	q.requeue = 1;
	relays[0] = a.url;
	relays[1] = b.url;
	opts_init(&o, relays, 2);
	o.max_connections = 3;
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), 0);
	a.pid = 0;
	srv_stop(&b);
	seen_load(&a, &sa);
	seen_load(&b, &sb);
	q_check_accounting(&q);
	print_message("primary got %d, backup %d, sent %d, deferred %d\n",
	    sa.n, sb.n, q_count(&q, SMTP_SENT), q_count(&q, SMTP_TEMPFAIL));
	assert_int_equal(q_count(&q, SMTP_RELAY_DOWN), 0);
	assert_true(sb.n >= n - 10 - 3);
	assert_true(q_count(&q, SMTP_TEMPFAIL) <= 3);
	for (int i = 0; i < n; i++) {
		seen_rcpt(&sa, q.it[i].rcpt, &ca);
		seen_rcpt(&sb, q.it[i].rcpt, &cb);
		if (q.it[i].done == 0)
			continue;	/* handed back by a retired worker */
		if (q.it[i].res.outcome == SMTP_SENT) {
			assert_int_equal(ca + cb, 1);
			assert_int_equal(q.it[i].res.relay, cb ? 1 : 0);
		} else {
			/* In flight when the primary died: deferred. */
			assert_int_equal(q.it[i].res.outcome, SMTP_TEMPFAIL);
			assert_int_equal(cb, 0);
			assert_true(ca <= 1);
		}
	}
	seen_free(&sa);
	seen_free(&sb);
	q_free(&q);

	/* The only relay dies: what is left is handed back, exit 69. */
	srv_start(f, &a, "smtp", NULL);
	q_init(&q, n);
	for (int i = 0; i < n; i++)
		q_set(&q, i, "only@example.jp", "x\r\n");
	q.kill_pid = a.pid;
	q.kill_at = 6;
	relays[0] = a.url;
	opts_init(&o, relays, 1);
	assert_int_equal(smtp_run(&o, q_next, q_done, &q, &e), -ERR_NET);
	a.pid = 0;
	seen_load(&a, &sa);
	q_check_accounting(&q);
	assert_int_equal(q_count(&q, SMTP_SENT), 5);
	assert_int_equal(sa.n, 5);
	assert_int_equal(q_count(&q, SMTP_RELAY_DOWN), 1);
	assert_int_equal(q.calls, 6);
	seen_free(&sa);
	q_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_check),
		cmocka_unit_test(test_queue_id),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_send_many_reused),
		cmocka_unit_test(test_before_end),
		cmocka_unit_test(test_before_end_two_dots),
		cmocka_unit_test(test_every_reply),
		cmocka_unit_test(test_env_proxy_ignored),
		cmocka_unit_test(test_stalled_relay_times_out),
		cmocka_unit_test(test_silent_greeting_is_relay_down),
		cmocka_unit_test(test_failover_to_second_relay),
		cmocka_unit_test(test_all_relays_down),
		cmocka_unit_test(test_refused_at_the_boundary),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_rate_cap),
		cmocka_unit_test(test_limits_and_stops),
		cmocka_unit_test(test_relay_limits),
		cmocka_unit_test(test_relay_dies_mid_run),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGPIPE, SIG_IGN);	/* smtp.h: NOSIGNAL handles */
	if (getenv("SAMAIL_TEST_DEBUG") != NULL)
		log_init(2, 0);	/* show the SMTP dialogue */
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	curl_global_cleanup();
	return rc;
}
