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
	} else if (strcmp(name, "cpe") == 0)
		add_list(&cur->cpe, value);
	else if (strcmp(name, "keyword") == 0 || strcmp(name, "keywords") == 0)
		add_list(&cur->keywords, value);
	else if (strcmp(name, "exclude") == 0)
		add_list(&cur->exclude, value);
	else {
		err_set(c->e, ERR_CONFIG, "unknown key '%s' in product '%s' "
		    "(known: ja, en, cpe, keyword, exclude)", name, section);
		goto fail;
	}
	return 1;
fail:
	c->failed = 1;
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
	return 0;
}

void
products_release(struct products *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].tag);
		free(p->v[i].name_ja);
		free(p->v[i].name_en);
		strlist_release(&p->v[i].cpe);
		strlist_release(&p->v[i].keywords);
		strlist_release(&p->v[i].exclude);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

const struct product *
products_find(const struct products *p, const char *s)
{
	for (size_t i = 0; i < p->n; i++)
		if (text_ieq(p->v[i].tag, s))
			return &p->v[i];
	for (size_t i = 0; i < p->n; i++)
		if (text_ieq(p->v[i].name_en, s) || strcmp(p->v[i].name_ja, s) == 0)
			return &p->v[i];
	return NULL;
}

char *
products_tags(const struct products *p)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; i < p->n; i++)
		buf_addf(&b, "%s%s", i ? ", " : "", p->v[i].tag);
	return buf_detach(&b, NULL);
}
