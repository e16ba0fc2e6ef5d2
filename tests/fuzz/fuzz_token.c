/*
 * fuzz_token — token_verify() on arbitrary strings must never accept one
 * (that would be a forgery), and token_make() output built from the same
 * bytes must always verify to its id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[] = "fuzz-key-fuzz-key-fuzz-key-fuzz-key!";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct token_keys k = { key, 32, NULL, 0 };
	char tok[TOKEN_LEN + 1], *s;
	int64_t id = 0, back = 0;
	struct err e = ERR_INIT;

	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (token_verify(&k, s, "news.example.jp", &id, &e) >= 0)
		abort();	/* a token nobody made was accepted */
	free(s);
	if (size >= 8) {
		memcpy(&id, data, 8);
		if (id > 0) {
			if (token_make(&k, id, "news.example.jp", tok, &e) != 0 ||
			    token_verify(&k, tok, "news.example.jp", &back,
			    &e) != 0 || back != id)
				abort();
		}
	}
	return 0;
}
