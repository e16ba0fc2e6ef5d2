/*
 * libFuzzer target for lib/config: config_load() (inih, then every key's
 * check and the checks of the whole in finish()) on any bytes as the
 * config file.  `tests/fuzz/run.sh SECONDS` (make fuzz) builds and runs
 * it with docs/samail.conf.example as a seed and config.dict.
 *
 * Besides crashes, leaks and undefined behaviour the target checks what
 * callers rely on: the result is 0 or -ERR_CONFIG; an error is one line
 * without control characters that starts with the file's name, and the
 * line it names (FILE:N:) is a line of the file; a loaded config holds
 * only what the checks let through (addresses that addr_check() returns
 * unchanged, a List-Id in brackets, an https (or local http) base URL,
 * numbers in their ranges, reminder offsets largest first); and loading
 * the same bytes twice gives the same answer.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "err.h"
#include "text.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[4096];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/fuzz_config.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	snprintf(path, sizeof(path), "%s/samail.conf", dir);
	unsetenv("SAMAIL_CHECK_SKELETONS");
	return 0;
}

static void
clean(const char *s)
{
	if (s == NULL)
		return;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
	if (!text_utf8_valid(s, strlen(s)) || text_has_control(s))
		abort();
}

static void
same_addr(const char *a)
{
	char norm[ADDR_MAX + 1];

	if (a == NULL || addr_check(a, norm, NULL) < 0 || strcmp(a, norm) != 0)
		abort();
}

static void
check_config(const struct config *c)
{
	const char *strs[] = { c->db_path, c->templates_dir, c->data_dir,
	    c->from, c->from_name, c->from_name_en, c->list_id, c->list_name,
	    c->message_id_domain, c->transport, c->ca_file, c->smtp_user,
	    c->smtp_password_file, c->helo, c->feeds_file, c->products_file,
	    c->unsub_base_url, c->unsub_secret_file, c->unsub_old_secret_file,
	    c->unsub_old_until, c->listen, c->rm_url };

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		clean(strs[i]);
	same_addr(c->from_addr);
	same_addr(c->envelope_from);
	same_addr(c->unsub_mailto);
	if (c->reply_to != NULL)
		same_addr(c->reply_to);
	if (c->list_id[0] != '<' || c->list_id[strlen(c->list_id) - 1] != '>' ||
	    strchr(c->list_id, ' ') != NULL)
		abort();
	if (strchr(c->unsub_base_url, ' ') != NULL ||
	    (strncmp(c->unsub_base_url, "https://", 8) != 0 &&
	    strncmp(c->unsub_base_url, "http://", 7) != 0))
		abort();
	if (c->relays == NULL && strncmp(c->transport, "maildir:", 8) != 0 &&
	    strncmp(c->transport, "mbox:", 5) != 0)
		abort();
	for (size_t i = 0; i < c->nrelays; i++)
		if (strncmp(c->relays[i], "smtp://", 7) != 0 &&
		    strncmp(c->relays[i], "smtps://", 8) != 0)
			abort();
	if (c->rm_noffsets == 0 || c->rm_noffsets > 8)
		abort();
	for (size_t i = 0; i < c->rm_noffsets; i++)
		if (c->rm_offsets[i] < 0 || c->rm_offsets[i] > 365 ||
		    (i > 0 && c->rm_offsets[i] > c->rm_offsets[i - 1]))
			abort();
	if (c->db_busy_timeout < 0 || c->max_connections < 1 ||
	    c->max_connections > 64 || c->max_age < 60 ||
	    c->feed_max_size < 1024 || c->nl_day < 1 || c->nl_day > 28 ||
	    c->rm_interval < 1 || c->rm_hour > 23 || c->rm_minute > 59)
		abort();
}

/* "FILE:N: ..." names a line of the file (1..lines). */
static void
check_line_number(const char *msg, const uint8_t *data, size_t size)
{
	size_t n = strlen(path), lines = 1;
	const char *p;
	long line;
	char *end;

	if (strncmp(msg, path, n) != 0)
		abort();	/* the file is named first */
	if (msg[n] != ':' || msg[n + 1] < '0' || msg[n + 1] > '9')
		return;		/* the whole file (finish()) */
	line = strtol(msg + n + 1, &end, 10);
	if (*end != ':')
		return;
	for (p = (const char *)data; p < (const char *)data + size; p++)
		if (*p == '\n')
			lines++;
	if (line < 1 || (size_t)line > lines)
		abort();	/* a line the file does not have */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL, *c2 = NULL;
	struct err e = ERR_INIT, e2 = ERR_INIT;
	FILE *fp;
	int rc, rc2;

	if ((fp = fopen(path, "wb")) == NULL ||
	    fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
		abort();
	rc = config_load(&c, path, NULL, &e);
	if (rc == 0) {
		if (c == NULL)
			abort();
		check_config(c);
	} else {
		/* e.code may be the inner one (an address's ERR_INVAL). */
		if (rc != -ERR_CONFIG || c != NULL || e.code == 0) {
			fprintf(stderr, "fuzz_config: %d: %s\n", rc, e.msg);
			abort();
		}
		if (getenv("FUZZ_CONFIG_SHOW") != NULL)
			fprintf(stderr, "fuzz_config: %s\n", e.msg);
		clean(e.msg);
		check_line_number(e.msg, data, size);
	}
	rc2 = config_load(&c2, path, NULL, &e2);
	if (rc2 != rc || strcmp(e.msg, e2.msg) != 0)
		abort();
	config_free(c);
	config_free(c2);
	return 0;
}
