/*
 * campaign — what every kind of campaign shares: its row, its frozen
 * content, Message-IDs, and turning one outbox row into message bytes.
 *
 * Kinds: "newsletter" (newsletter.c) and "reminder" (remind.c).  The
 * sender knows only this interface.
 */
#ifndef SAMAIL_CAMPAIGN_H
#define SAMAIL_CAMPAIGN_H

#include <jansson.h>
#include <time.h>

#include "buf.h"
#include "token.h"

struct config;
struct db;
struct err;
struct outbox_row;
struct render;

/* What rendering needs besides the campaign and the row. */
struct campaign_env {
	const struct config	*cfg;
	const char		*instance;	/* this database's id, 8 hex */
	unsigned		 msg_flags;	/* MSG_F_LF for local stores */
	const struct token_keys	*keys;		/* Message-ID tags; NULL: none */
};

struct campaign_run {
	long long	 id;
	char		 name[64];
	char		 kind[16];
	json_t		*content;	/* the frozen snapshot */
	struct render	*render;
	const struct campaign_env *env;
	void		*state;		/* the kind's own */
};

/* The campaign's row: id, or 0 if it does not exist.  *content (may be
 * NULL) gets a new reference to its content. */
long long campaign_find(struct db *, const char *name, json_t **content,
	    struct err *);
/* Insert a campaign; returns its id. */
long long campaign_create(struct db *, const char *kind, const char *name,
	    const char *period, json_t *content, time_t now, struct err *);

/* Load campaign id and compile its templates, for sending.  Free with
 * campaign_run_free(). */
int	 campaign_load(struct db *, long long id, const struct campaign_env *,
	    struct campaign_run **, struct err *);
void	 campaign_run_free(struct campaign_run *);

/* The bytes of the message for one outbox row of this campaign. */
int	 campaign_render(const struct campaign_run *, const struct outbox_row *,
	    struct buf *out, struct err *);

/* The Message-ID domain of a campaign: the one frozen in its content when
 * it was created (a resend keeps its Message-ID whatever the config says
 * now), else [mail] message_id_domain. */
const char *campaign_mid_domain(const struct campaign_run *);

/*
 * The Message-ID (without <>) of the message for (campaign, declarer,
 * item): "NAME.ID[.ITEM].TAG.INSTANCE@DOMAIN", TAG an HMAC keyed with the
 * unsubscribe secret (left out when keys is NULL).  Stable: a re-send
 * carries the same one, and `samail bounce` reads the campaign and
 * declarer back from it with campaign_parse_message_id(), which with keys
 * accepts only a tag made with the current or the previous key — so a
 * forged bounce cannot name a declarer by guessing ids.
 */
void	 campaign_message_id(struct buf *out, const char *name,
	    long long subscriber_id, const char *item, const char *instance,
	    const char *domain, const struct token_keys *keys);
/* Parse one (with or without <>): 0 with name (64 bytes) and id filled, or
 * -ERR_INVAL if it is not ours. */
int	 campaign_parse_message_id(const char *mid, const char *instance,
	    const struct token_keys *keys, char *name, long long *subscriber_id);

/* This database's instance id (created on first use), 8 hex digits, into
 * out (9 bytes). */
int	 campaign_instance(struct db *, char *out, struct err *);

/* The unsubscribe keys from the config (current and previous secret). */
struct campaign_keys {
	struct token_keys	 k;
	char			*cur;
	char			*prev;
};
int	 campaign_keys_load(const struct config *, time_t now,
	    struct campaign_keys *, struct err *);
void	 campaign_keys_release(struct campaign_keys *);
/* "news.example.jp" from "<news.example.jp>" into out (256 bytes). */
void	 campaign_list_id(const struct config *, char *out);

/* Kind hooks (newsletter.c, remind.c). */
int	 newsletter_prepare(struct campaign_run *, struct err *);
int	 newsletter_render_row(const struct campaign_run *,
	    const struct outbox_row *, struct buf *, struct err *);
void	 newsletter_release(struct campaign_run *);
int	 remind_prepare(struct campaign_run *, struct err *);
int	 remind_render_row(const struct campaign_run *,
	    const struct outbox_row *, struct buf *, struct err *);
void	 remind_release(struct campaign_run *);

#endif
