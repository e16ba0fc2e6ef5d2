/*
 * token — unsubscribe tokens, and the address hash kept in suppression
 * records.
 *
 * A token names one declarer on one list and proves that we issued it:
 *
 *	base64url(version || declarer id || MAC), no padding, TOKEN_LEN chars
 *	version     1 byte, TOKEN_VERSION
 *	declarer id 8 bytes, big-endian, > 0
 *	MAC         HMAC-SHA256(key, "samail-unsub" NUL version id list_id),
 *	            first 24 bytes
 *
 * The list id is in the MAC but not in the token: the verifier says which
 * list it expects, and a token made for another list fails.  Verification
 * checks the length and alphabet first, then the MAC in constant time, and
 * only then hands out the declarer id, so no lookup can be driven by a
 * guessed or altered token.  Key rotation: tokens are made with the current
 * key and verified against the current key, then the previous one.
 *
 * Keys are the secret's bytes as read from the secret file or environment
 * (at least TOKEN_KEY_MIN of them); this module never reads them itself.
 */
#ifndef SAMAIL_TOKEN_H
#define SAMAIL_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define TOKEN_VERSION	1
#define TOKEN_LEN	44	/* characters, from [A-Za-z0-9_-] */
#define TOKEN_KEY_MIN	32	/* bytes of secret */
#define TOKEN_HASH_LEN	64	/* hex characters of token_addr_hash() */

struct token_keys {
	const unsigned char	*cur;		/* signs and verifies */
	size_t			 cur_len;
	const unsigned char	*prev;		/* verifies only; NULL = none */
	size_t			 prev_len;
};

/*
 * Write the token for declarer id on list list_id (a List-Id such as
 * "news.example.jp") into out, NUL-terminated.
 * Returns 0, -ERR_CONFIG (a key shorter than TOKEN_KEY_MIN), -ERR_INVAL
 * (id <= 0, list_id empty or with control characters) or -ERR_SOFTWARE
 * (OpenSSL could not make the HMAC).
 */
int	 token_make(const struct token_keys *k, int64_t id,
	    const char *list_id, char out[TOKEN_LEN + 1], struct err *e);

/*
 * Check token (untrusted: from a URL or a command line) for list list_id.
 * On success store the declarer id in *id and return 0 when the current
 * key made it, 1 when the previous key did (the caller may re-issue).
 * Returns -ERR_INVAL for any token that is not ours for this list (wrong
 * length or alphabet, unknown version, MAC mismatch: the message does not
 * say which, nor quote the token), -ERR_CONFIG for a short key,
 * -ERR_SOFTWARE when OpenSSL could not make the HMAC.  *id is left alone
 * on failure.
 */
int	 token_verify(const struct token_keys *k, const char *token,
	    const char *list_id, int64_t *id, struct err *e);

/* 1 if s has a token's shape (TOKEN_LEN base64url characters) and nothing
 * more; says nothing of whether it verifies. */
int	 token_is_bare(const char *s);

/*
 * The suppression key of an address: SHA-256, as 64 lower-case hex
 * digits, of the address with surrounding blanks removed and ASCII
 * letters lower-cased (local parts are case-insensitive in practice, and
 * a suppression list must err towards matching).  It is stable across
 * runs and secrets, and does not store the address; it is not secret
 * either: anyone holding a candidate address can compute it.
 * Returns 0, or -ERR_INVAL (empty, no '@', control character).
 */
int	 token_addr_hash(const char *addr, char out[TOKEN_HASH_LEN + 1],
	    struct err *e);

#endif
