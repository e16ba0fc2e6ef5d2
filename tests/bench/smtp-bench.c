/*
 * smtp-bench — drive smtp_run() flat out against a relay (Postfix's
 * smtp-sink) and print messages/s and CPU per message.  Not a unit test:
 * tests/bench/smtp-bench.sh builds it, starts the sink and compares it
 * with smtp-source.
 *
 *   smtp-bench URL MESSAGES CONNECTIONS BODY_BYTES
 *
 * Every job is the same ~BODY_BYTES message (CRLF lines of 78 characters)
 * to one recipient, as smtp-source -l sends; next_cb and done_cb do what
 * the outbox will do at least (a mutex, a counter), no database.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#include "err.h"
#include "log.h"
#include "smtp.h"
#include "xalloc.h"

struct bench {
	pthread_mutex_t	 mu;
	unsigned long	 next, total;
	unsigned long	 count[SMTP_UNSENT + 1];
	char		*msg;
	size_t		 len;
};

static int
next_cb(struct smtp_job *job, void *arg)
{
	struct bench *b = arg;
	int rc = SMTP_NEXT_NONE;

	pthread_mutex_lock(&b->mu);
	if (b->next < b->total) {
		b->next++;
		job->rcpt = "user@example.com";
		job->data = b->msg;
		job->len = b->len;
		rc = SMTP_NEXT_JOB;
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

static void
done_cb(const struct smtp_job *job, const struct smtp_result *r, void *arg)
{
	struct bench *b = arg;

	(void)job;
	pthread_mutex_lock(&b->mu);
	b->count[r->outcome]++;
	pthread_mutex_unlock(&b->mu);
}

static double
secs(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
	struct bench b;
	struct smtp_opts o;
	struct err e = ERR_INIT;
	struct rusage ru;
	struct timespec t0, t1;
	const char *relays[1];
	size_t body, n = 0;
	double wall, cpu;
	int rc;
	FILE *fp;

	if (argc != 5) {
		fprintf(stderr, "usage: smtp-bench URL MESSAGES CONNECTIONS "
		    "BODY_BYTES\n");
		return 64;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGPIPE, SIG_IGN);	/* smtp.h: NOSIGNAL handles */
	log_init(0, 0);
	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mu, NULL);
	b.total = strtoul(argv[2], NULL, 10);
	body = strtoul(argv[4], NULL, 10);
	fp = open_memstream(&b.msg, &b.len);
	fprintf(fp, "From: <bench@example.org>\r\nTo: <user@example.com>\r\n"
	    "Subject: bench\r\nMessage-ID: <bench@example.org>\r\n"
	    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n");
	while (n < body) {
		fprintf(fp, "%.78s\r\n", "La la la la la la la la la la la la la "
		    "la la la la la la la la la la la la la la la la la");
		n += 80;
	}
	fclose(fp);

	memset(&o, 0, sizeof(o));
	relays[0] = argv[1];
	o.relays = relays;
	o.nrelays = 1;
	o.envelope_from = "bench@example.org";
	o.helo = "bench.example.org";
	o.max_connections = atoi(argv[3]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = smtp_run(&o, next_cb, done_cb, &b, &e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc < 0) {
		fprintf(stderr, "smtp-bench: %s\n", e.msg);
		return err_exitcode(rc);
	}
	getrusage(RUSAGE_SELF, &ru);
	wall = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cpu = secs(&ru.ru_utime) + secs(&ru.ru_stime);
	printf("messages %lu sent %lu failed %lu bytes %zu wall %.2f s "
	    "rate %.0f msg/s cpu %.2f s (%.0f us/msg)\n", b.total,
	    b.count[SMTP_SENT], b.total - b.count[SMTP_SENT], b.len, wall,
	    (double)b.count[SMTP_SENT] / wall, cpu,
	    cpu * 1e6 / (double)(b.count[SMTP_SENT] ? b.count[SMTP_SENT] : 1));
	free(b.msg);
	curl_global_cleanup();
	return b.count[SMTP_SENT] == b.total ? 0 : 1;
}
