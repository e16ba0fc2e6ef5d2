#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "err.h"
#include "text.h"

/*
 * A message cut by its buffer ends at a whole character: a UTF-8
 * sequence the cut left incomplete is dropped (messages quote Japanese
 * text; half a character is not text, and JSON or a terminal shows it
 * as garbage).
 */
static void
cut_utf8(char *s, size_t size)
{
	size_t n = strlen(s), i = n, need;
	unsigned char c;

	if (n + 1 < size)
		return;			/* not cut */
	while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)s[i - 1];
	need = text_utf8_seq(c);
	if (need > 1 && (i - 1) + need > n)
		s[i - 1] = '\0';
}

int
err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e != NULL) {
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		cut_utf8(e->msg, sizeof(e->msg));
		/* One line, always: a message may quote outside input. */
		for (char *p = e->msg; *p != '\0'; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	return -code;
}

int
err_prefix(struct err *e, const char *fmt, ...)
{
	char pre[512], old[sizeof(e->msg)];
	va_list ap;

	if (e == NULL)
		return -ERR_SOFTWARE;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	cut_utf8(pre, sizeof(pre));
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", pre, old);
	cut_utf8(e->msg, sizeof(e->msg));
	return -e->code;
}

void
err_clear(struct err *e)
{
	if (e != NULL) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

int
err_exitcode(int rc)
{
	if (rc >= 0)
		return EX_OK;
	switch (-rc) {
	case ERR_IO:
	case ERR_DB:		return EX_IOERR;
	case ERR_NET:		return EX_UNAVAILABLE;
	case ERR_PROTO:		return EX_PROTOCOL;
	case ERR_PARSE:
	case ERR_INVAL:
	case ERR_TOOBIG:
	case ERR_PERM:
	case ERR_NOTFOUND:
	case ERR_EXISTS:	return EX_DATAERR;
	case ERR_CONFIG:	return EX_CONFIG;
	case ERR_TEMP:
	case ERR_LOCKED:	return EX_TEMPFAIL;
	case ERR_USAGE:		return EX_USAGE;
	case ERR_NOINPUT:	return EX_NOINPUT;
	case ERR_CANTCREAT:	return EX_CANTCREAT;
	default:		return EX_SOFTWARE;
	}
}

static int
rank(int ex)
{
	static const int order[] = {
		EX_OK, EX_TEMPFAIL, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE,
		EX_PROTOCOL, EX_IOERR, EX_CANTCREAT, EX_CONFIG, EX_USAGE,
		EX_SOFTWARE,
	};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (order[i] == ex)
			return (int)i;
	return (int)(sizeof(order) / sizeof(order[0]));
}

int
err_worst(int a, int b)
{
	return rank(a) >= rank(b) ? a : b;
}

const char *
err_name(int code)
{
	static const char *const names[ERR__MAX] = {
		[0] = "ok", [ERR_IO] = "io", [ERR_NET] = "net",
		[ERR_PROTO] = "protocol", [ERR_PARSE] = "parse",
		[ERR_INVAL] = "invalid", [ERR_TOOBIG] = "too-big",
		[ERR_DB] = "db", [ERR_CONFIG] = "config", [ERR_TEMP] = "temp",
		[ERR_PERM] = "perm", [ERR_USAGE] = "usage",
		[ERR_NOINPUT] = "noinput", [ERR_CANTCREAT] = "cantcreat",
		[ERR_NOTFOUND] = "notfound", [ERR_EXISTS] = "exists",
		[ERR_LOCKED] = "locked", [ERR_SOFTWARE] = "software",
	};

	if (code < 0)
		code = -code;
	if (code >= ERR__MAX || names[code] == NULL)
		return "unknown";
	return names[code];
}
