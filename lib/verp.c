#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "verp.h"

/* The MAC covers a list name of its own, so an unsubscribe token can
 * never pass as a return address or the other way round. */
static void
verp_list(const char *list_id, char *out, size_t n)
{
	snprintf(out, n, "verp:%s", list_id);
}

int
verp_address(const struct token_keys *k, const char *list_id,
    const char *envelope_from, int64_t id, char *out, struct err *e)
{
	char tok[TOKEN_LEN + 1], list[300];
	const char *at = strrchr(envelope_from, '@');
	int rc;

	if (at == NULL)
		return err_set(e, ERR_CONFIG, "envelope_from '%s' has no '@'",
		    envelope_from);
	if ((size_t)(at - envelope_from) + 1 + TOKEN_LEN > 64)
		return err_set(e, ERR_CONFIG, "[mail] verp: the local part of "
		    "envelope_from '%s' is too long to add a %d-character tag "
		    "(at most %d characters)", envelope_from, TOKEN_LEN,
		    64 - 1 - TOKEN_LEN);
	verp_list(list_id, list, sizeof(list));
	if ((rc = token_make(k, id, list, tok, e)) < 0)
		return rc;
	snprintf(out, ADDR_MAX + 1, "%.*s+%s%s", (int)(at - envelope_from),
	    envelope_from, tok, at);
	return 0;
}

int
verp_parse(const struct token_keys *k, const char *list_id,
    const char *envelope_from, const char *addr, int64_t *id)
{
	const char *at = strrchr(envelope_from, '@'), *aat = strrchr(addr, '@');
	char tok[TOKEN_LEN + 1], list[300];
	size_t llen;

	if (at == NULL || aat == NULL || strcasecmp(at, aat) != 0)
		return -ERR_INVAL;
	llen = (size_t)(at - envelope_from);
	if ((size_t)(aat - addr) != llen + 1 + TOKEN_LEN ||
	    strncasecmp(addr, envelope_from, llen) != 0 || addr[llen] != '+')
		return -ERR_INVAL;
	memcpy(tok, addr + llen + 1, TOKEN_LEN);
	tok[TOKEN_LEN] = '\0';
	verp_list(list_id, list, sizeof(list));
	return token_verify(k, tok, list, id, NULL) < 0 ? -ERR_INVAL : 0;
}
