/*
 * token — unsubscribe tokens and address hashes.  See token.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "err.h"
#include "token.h"

#define ID_LEN		8
#define MAC_LEN		24	/* 192 bits of HMAC-SHA256: forgery is hopeless */
#define RAW_LEN		(1 + ID_LEN + MAC_LEN)	/* 33 bytes = 44 base64 chars */
#define LISTID_MAX	255
/* RFC 3696 errata: 64 + 1 + 255; longer is not an address at all. */
#define ADDR_MAX	320

/* Separates these MACs from anything else the same secret might sign. */
static const char mac_domain[] = "samail-unsub";

_Static_assert(RAW_LEN % 3 == 0 && RAW_LEN / 3 * 4 == TOKEN_LEN,
    "a token is whole base64 groups, so no padding and one encoding");

static int
check_keys(const struct token_keys *k, struct err *e)
{
	if (k->cur == NULL || k->cur_len < TOKEN_KEY_MIN ||
	    (k->prev != NULL && k->prev_len < TOKEN_KEY_MIN))
		return err_set(e, ERR_CONFIG, "unsubscribe secret: shorter "
		    "than %d bytes; make one with 'openssl rand -hex 32'",
		    TOKEN_KEY_MIN);
	return 0;
}

static int
check_list(const char *list_id, struct err *e)
{
	if (list_id == NULL || *list_id == '\0' ||
	    strlen(list_id) > LISTID_MAX)
		return err_set(e, ERR_INVAL, "unsubscribe token: list id "
		    "missing or too long");
	for (const char *p = list_id; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return err_set(e, ERR_INVAL, "unsubscribe token: list "
			    "id has a control character");
	return 0;
}

/*
 * OpenSSL's HMAC, fetched once: HMAC() looks the algorithm up in the
 * provider store on every call, under a lock that every sending thread
 * takes for every message (a Message-ID and a token each).  Each thread
 * keeps its context, keyed: a new context with its key and digest cost
 * 2 us single-threaded and 10 us a MAC with eight sending threads (the
 * digest fetched under the same lock); re-initialised with the key it
 * holds, it starts from the keyed state it saved.
 */
#define MAC_KEY_CACHE	256	/* longer keys get a fresh context each time */

struct mac_ctx {
	EVP_MAC_CTX	*ctx;
	size_t		 keylen;
	unsigned char	 key[MAC_KEY_CACHE];
};

static EVP_MAC *hmac_alg;
static pthread_key_t mac_tls;
static int mac_tls_ok;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
mac_ctx_free(void *p)
{
	struct mac_ctx *c = p;

	EVP_MAC_CTX_free(c->ctx);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static void
hmac_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	mac_tls_ok = pthread_key_create(&mac_tls, mac_ctx_free) == 0;
}

/* This thread's context, keyed with key and reset; NULL when OpenSSL
 * cannot make one. */
static EVP_MAC_CTX *
mac_ctx(const unsigned char *key, size_t keylen, int *owned)
{
	OSSL_PARAM params[2];
	struct mac_ctx *c = NULL;
	EVP_MAC_CTX *ctx;

	pthread_once(&hmac_once, hmac_fetch);
	if (hmac_alg == NULL)
		return NULL;
	if (mac_tls_ok && keylen <= MAC_KEY_CACHE &&
	    (c = pthread_getspecific(mac_tls)) == NULL &&
	    (c = calloc(1, sizeof(*c))) != NULL &&
	    pthread_setspecific(mac_tls, c) != 0) {
		free(c);
		c = NULL;
	}
	*owned = c == NULL;
	if (c != NULL && c->ctx != NULL && c->keylen == keylen &&
	    CRYPTO_memcmp(c->key, key, keylen) == 0)
		return EVP_MAC_init(c->ctx, NULL, 0, NULL) == 1 ? c->ctx : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_MAC_CTX_new(hmac_alg)) == NULL ||
	    EVP_MAC_init(ctx, key, keylen, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	if (c != NULL) {
		EVP_MAC_CTX_free(c->ctx);
		c->ctx = ctx;
		OPENSSL_cleanse(c->key, sizeof(c->key));	/* the old key */
		c->keylen = keylen;
		memcpy(c->key, key, keylen);
	}
	return ctx;
}

/* HMAC over domain, NUL, version and id (raw[0..9)), list id.  0, or
 * -ERR_SOFTWARE when OpenSSL cannot make one (out of memory, a broken
 * provider): a MAC we cannot make must never come out as another. */
static int
mac(const unsigned char *key, size_t keylen, const unsigned char *raw,
    const char *list_id, unsigned char out[MAC_LEN])
{
	unsigned char msg[sizeof(mac_domain) + 1 + ID_LEN + LISTID_MAX];
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0, n = 0, llen = strlen(list_id);
	EVP_MAC_CTX *ctx;
	int owned = 1, ok;

	memcpy(msg, mac_domain, sizeof(mac_domain));	/* with its NUL */
	n += sizeof(mac_domain);
	memcpy(msg + n, raw, 1 + ID_LEN);
	n += 1 + ID_LEN;
	memcpy(msg + n, list_id, llen);
	n += llen;
	ok = (ctx = mac_ctx(key, keylen, &owned)) != NULL &&
	    EVP_MAC_update(ctx, msg, n) == 1 &&
	    EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) == 1 && mdlen >= MAC_LEN;
	if (owned)
		EVP_MAC_CTX_free(ctx);
	if (ok)
		memcpy(out, md, MAC_LEN);
	OPENSSL_cleanse(md, sizeof(md));
	return ok ? 0 : -ERR_SOFTWARE;
}

static int
mac_failed(struct err *e)
{
	return err_set(e, ERR_SOFTWARE, "OpenSSL cannot make an HMAC-SHA256 "
	    "(out of memory, or its default provider is missing)");
}

int
token_make(const struct token_keys *k, int64_t id, const char *list_id,
    char out[TOKEN_LEN + 1], struct err *e)
{
	unsigned char raw[RAW_LEN], b64[TOKEN_LEN + 1];
	uint64_t u;
	int rc;

	if ((rc = check_keys(k, e)) < 0 || (rc = check_list(list_id, e)) < 0)
		return rc;
	if (id <= 0)
		return err_set(e, ERR_INVAL, "unsubscribe token: declarer id "
		    "%lld is not positive", (long long)id);
	raw[0] = TOKEN_VERSION;
	u = (uint64_t)id;
	for (int i = ID_LEN; i >= 1; i--, u >>= 8)
		raw[i] = (unsigned char)(u & 0xff);
	if (mac(k->cur, k->cur_len, raw, list_id, raw + 1 + ID_LEN) < 0)
		return mac_failed(e);
	EVP_EncodeBlock(b64, raw, RAW_LEN);
	/* base64url (RFC 4648 5): safe in a URL path and a mail subject. */
	for (int i = 0; i < TOKEN_LEN; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' :
		    (char)b64[i];
	out[TOKEN_LEN] = '\0';
	return 0;
}

static int
is_b64url(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
token_is_bare(const char *s)
{
	if (s == NULL || strnlen(s, TOKEN_LEN + 1) != TOKEN_LEN)
		return 0;
	for (int i = 0; i < TOKEN_LEN; i++)
		if (!is_b64url((unsigned char)s[i]))
			return 0;
	return 1;
}

int
token_verify(const struct token_keys *k, const char *token,
    const char *list_id, int64_t *id, struct err *e)
{
	unsigned char b64[TOKEN_LEN + 1], raw[RAW_LEN + 2], want[MAC_LEN];
	uint64_t u = 0;
	int rc, ok_cur, ok_prev = 0;

	if ((rc = check_keys(k, e)) < 0 || (rc = check_list(list_id, e)) < 0)
		return rc;
	/* Shape first: nothing else is looked at in a malformed token. */
	if (token == NULL || strnlen(token, TOKEN_LEN + 1) != TOKEN_LEN)
		goto bad;
	for (int i = 0; i < TOKEN_LEN; i++) {
		unsigned char c = (unsigned char)token[i];

		if (!is_b64url(c))
			goto bad;
		b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	b64[TOKEN_LEN] = '\0';
	if (EVP_DecodeBlock(raw, b64, TOKEN_LEN) != RAW_LEN)
		goto bad;
	if (raw[0] != TOKEN_VERSION)
		goto bad;
	/* Both MACs are always computed, compared in constant time. */
	if (mac(k->cur, k->cur_len, raw, list_id, want) < 0)
		return mac_failed(e);
	ok_cur = CRYPTO_memcmp(want, raw + 1 + ID_LEN, MAC_LEN) == 0;
	if (k->prev != NULL) {
		if (mac(k->prev, k->prev_len, raw, list_id, want) < 0)
			return mac_failed(e);
		ok_prev = CRYPTO_memcmp(want, raw + 1 + ID_LEN, MAC_LEN) == 0;
	}
	if (!ok_cur && !ok_prev)
		goto bad;
	for (int i = 1; i <= ID_LEN; i++)
		u = u << 8 | raw[i];
	/* Only ever made for ids > 0; a MAC over another value is a bug. */
	if (u == 0 || u > INT64_MAX)
		goto bad;
	*id = (int64_t)u;
	return ok_cur ? 0 : 1;
bad:
	return err_set(e, ERR_INVAL, "unsubscribe token: not valid for this "
	    "list (mistyped, cut short, or not issued by us)");
}

int
token_addr_hash(const char *addr, char out[TOKEN_HASH_LEN + 1],
    struct err *e)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char norm[ADDR_MAX];
	const char *start, *end;
	size_t n;

	if (addr == NULL)
		return err_set(e, ERR_INVAL, "address hash: address missing");
	start = addr;
	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(end - start);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)start[i] < 0x20 || start[i] == 0x7f)
			return err_set(e, ERR_INVAL, "address hash: control "
			    "character in address");
	if (n == 0 || n > ADDR_MAX || memchr(start, '@', n) == NULL)
		return err_set(e, ERR_INVAL, "address hash: '%.*s' is not an "
		    "address", (int)(n > 80 ? 80 : n), start);
	/* ASCII letters only: the locale must not change the key. */
	for (size_t i = 0; i < n; i++)
		norm[i] = start[i] >= 'A' && start[i] <= 'Z' ?
		    (char)(start[i] - 'A' + 'a') : start[i];
	EVP_Digest(norm, n, md, NULL, EVP_sha256(), NULL);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}
