#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "products.h"
#include "text.h"
#include "xalloc.h"

void
strlist_add(struct strlist *l, const char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

int
strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

void
strlist_release(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

struct loadctx {
	struct products	*p;
	struct err	*e;
	const char	*path;
	int		 failed;
};

static int
valid_tag(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '-'))
			return 0;
	return 1;
}

/* Add each comma-separated, trimmed, non-empty element of value. */
static void
add_list(struct strlist *l, const char *value)
{
	char *copy = xstrdup(value), *save = NULL, *tok;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		text_trim(tok);
		if (*tok != '\0' && !strlist_has(l, tok))
			strlist_add(l, tok);
	}
	free(copy);
}

static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct loadctx *c = arg;
	struct products *p = c->p;
	struct product *cur;

	if (c->failed)
		return 0;
	if (!valid_tag(section)) {
		err_set(c->e, ERR_CONFIG, "product tag '%s' must be 1-32 of "
		    "a-z, 0-9 and '-'", section);
		goto fail;
	}
	if (p->n == 0 || strcmp(p->v[p->n - 1].tag, section) != 0) {
		for (size_t i = 0; i < p->n; i++)
			if (strcmp(p->v[i].tag, section) == 0) {
				err_set(c->e, ERR_CONFIG,
				    "product '%s' is defined twice", section);
				goto fail;
			}
		p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
		memset(&p->v[p->n], 0, sizeof(p->v[p->n]));
		p->v[p->n++].tag = xstrdup(section);
	}
	cur = &p->v[p->n - 1];
	if (!text_utf8_valid(value, strlen(value)) || text_has_control(value)) {
		err_set(c->e, ERR_CONFIG, "'%s' of product '%s' is not clean "
		    "UTF-8 text", name, section);
		goto fail;
	}
	if (strcmp(name, "ja") == 0) {
		free(cur->name_ja);
		cur->name_ja = xstrdup(value);
	} else if (strcmp(name, "en") == 0) {
		free(cur->name_en);
		cur->name_en = xstrdup(value);
	} else if (strcmp(name, "alias") == 0 || strcmp(name, "aliases") == 0)
		add_list(&cur->alias, value);
	else if (strcmp(name, "cpe") == 0)
		add_list(&cur->cpe, value);
	else if (strcmp(name, "keyword") == 0 || strcmp(name, "keywords") == 0)
		add_list(&cur->keywords, value);
	else if (strcmp(name, "exclude") == 0)
		add_list(&cur->exclude, value);
	else {
		err_set(c->e, ERR_CONFIG, "unknown key '%s' in product '%s' "
		    "(known: ja, en, alias, cpe, keyword, exclude)", name, section);
		goto fail;
	}
	return 1;
fail:
	c->failed = 1;
	return 0;
}

/* Each product's match keys; a key two products share is an error,
 * since a declarer writing it could mean either. */
static int
build_keys(struct products *p, const char *path, struct err *e)
{
	for (size_t i = 0; i < p->n; i++) {
		struct product *pr = &p->v[i];
		const char *names[3] = { pr->tag, pr->name_ja, pr->name_en };

		for (size_t k = 0; k < 3 + pr->alias.n; k++) {
			const char *name = k < 3 ? names[k] : pr->alias.v[k - 3];
			char *key = text_match_key(name);

			for (size_t j = 0; j < i && *key != '\0'; j++)
				if (strlist_has(&p->v[j].keys, key)) {
					err_set(e, ERR_CONFIG, "%s: '%s' names both "
					    "product '%s' and product '%s'", path,
					    name, p->v[j].tag, pr->tag);
					free(key);
					products_release(p);
					return -ERR_CONFIG;
				}
			if (*key != '\0' && !strlist_has(&pr->keys, key))
				strlist_add(&pr->keys, key);
			free(key);
		}
	}
	return 0;
}

int
products_load(struct products *p, const char *path, struct err *e)
{
	struct loadctx c = { p, e, path, 0 };
	FILE *fp;
	int line;

	memset(p, 0, sizeof(*p));
	if ((fp = fopen(path, "r")) == NULL)
		return err_set(e, ERR_NOINPUT, "cannot open product dictionary "
		    "'%s': %s", path, strerror(errno));
	line = ini_parse_file(fp, handler, &c);
	fclose(fp);
	if (line != 0) {
		if (!c.failed)
			err_set(e, ERR_CONFIG, "syntax error");
		err_prefix(e, "%s:%d", path, line);
		products_release(p);
		return -ERR_CONFIG;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].name_ja == NULL || p->v[i].name_en == NULL) {
			err_set(e, ERR_CONFIG, "%s: product '%s' needs both "
			    "'ja' and 'en' names", path, p->v[i].tag);
			products_release(p);
			return -ERR_CONFIG;
		}
	return build_keys(p, path, e);
}

void
products_release(struct products *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].tag);
		free(p->v[i].name_ja);
		free(p->v[i].name_en);
		strlist_release(&p->v[i].alias);
		strlist_release(&p->v[i].keys);
		strlist_release(&p->v[i].cpe);
		strlist_release(&p->v[i].keywords);
		strlist_release(&p->v[i].exclude);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

static const struct product *
find_key(const struct products *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (strlist_has(&p->v[i].keys, key))
			return &p->v[i];
	return NULL;
}

const struct product *
products_tag(const struct products *p, const char *s)
{
	/* Tags are lower-case ASCII: the first byte rules out most. */
	unsigned char c = (unsigned char)s[0];

	if (c >= 'A' && c <= 'Z')
		c = (unsigned char)(c - 'A' + 'a');
	for (size_t i = 0; i < p->n; i++)
		if ((unsigned char)p->v[i].tag[0] == c &&
		    text_ieq(p->v[i].tag, s))
			return &p->v[i];
	return NULL;
}

const struct product *
products_find(const struct products *p, const char *s)
{
	const struct product *pr;
	char *key;
	size_t n;

	if ((pr = products_tag(p, s)) != NULL)	/* the usual case, quickly */
		return pr;
	key = text_match_key(s);
	if (*key != '\0' && (pr = find_key(p, key)) == NULL) {
		/* "windows11", "php8.2": drop the version, keep a name. */
		int digits = 0;

		n = strlen(key);
		while (n > 0 && ((key[n - 1] >= '0' && key[n - 1] <= '9') ||
		    key[n - 1] == '.'))
			digits |= key[--n] != '.';
		if (n > 0 && digits) {
			key[n] = '\0';
			pr = find_key(p, key);
		}
	}
	free(key);
	return pr;
}

char *
products_tags(const struct products *p)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; i < p->n; i++)
		buf_addf(&b, "%s%s", i ? ", " : "", p->v[i].tag);
	return buf_detach(&b, NULL);
}
