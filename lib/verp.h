/*
 * verp — per-declarer envelope senders (variable envelope return paths).
 *
 * With [mail] verp = yes, each message's envelope sender is
 * "LOCAL+TOKEN@DOMAIN" for the configured envelope_from LOCAL@DOMAIN,
 * TOKEN an HMAC token (lib/token) naming the declarer.  A bounce comes
 * back to that address, and `samail bounce` knows whose it is without
 * trusting anything else in the bounce: the token cannot be forged, so a
 * made-up bounce cannot mark a declarer bounced.  The receiving MTA must
 * accept LOCAL+anything (Postfix: recipient_delimiter = +).
 */
#ifndef SAMAIL_VERP_H
#define SAMAIL_VERP_H

#include <stdint.h>

#include "addr.h"
#include "token.h"

struct err;

/*
 * The envelope sender for declarer id: out gets ADDR_MAX + 1 bytes.
 * -ERR_CONFIG if the local part would be longer than 64 characters.
 */
int	 verp_address(const struct token_keys *, const char *list_id,
	    const char *envelope_from, int64_t id, char *out, struct err *);

/*
 * If addr is one of our VERP addresses for envelope_from and its token
 * verifies, the declarer id into *id and 0; else -ERR_INVAL.
 */
int	 verp_parse(const struct token_keys *, const char *list_id,
	    const char *envelope_from, const char *addr, int64_t *id);

#endif
