/*
 * subscriber — declarers: validation of every field at the boundary, and
 * their rows in the store.
 *
 * Field values arrive as text (from the command line or a CSV cell) and
 * are checked and normalised by sub_set_field(); only then do they reach
 * the database, and from there mail headers.  Callers hold the
 * transaction: these functions never begin or commit.
 */
#ifndef SAMAIL_SUBSCRIBER_H
#define SAMAIL_SUBSCRIBER_H

#include <stdio.h>
#include <time.h>

#include "addr.h"

struct db;
struct err;
struct products;

enum sub_field {
	SUB_EMAIL, SUB_ORG, SUB_NAME, SUB_STAR, SUB_DECLARED, SUB_ASSESSED,
	SUB_PRODUCTS, SUB_INDUSTRY, SUB_EMPLOYEES, SUB_LOCALE,
	SUB_NFIELDS
};

/* English column/option name of a field ("email", "org", ...). */
const char *sub_field_name(enum sub_field);
/* Japanese column name (メールアドレス, 事業者名, ...). */
const char *sub_field_name_ja(enum sub_field);
/* The field a CSV header cell names (English or Japanese, a few common
 * variants, case-insensitive); -1 if none. */
int	 sub_field_lookup(const char *header);

#define SUB_NODATE	(-1000000L)	/* no date recorded */

/* A declarer's values.  Strings are owned by the struct. */
struct subscriber {
	long long	 id;
	char		 email[ADDR_MAX + 1];
	char		*org;
	char		*name;		/* NULL: none */
	int		 star;		/* 1 or 2 */
	long		 declared;	/* day number or SUB_NODATE */
	long		 assessed;
	char		*products;	/* "tag,tag", sorted, "" for none */
	char		*industry;
	long		 employees;	/* -1: unknown */
	char		 locale[3];	/* "ja" or "en" */
	char		 status[16];	/* active, unsubscribed, bounced, removed */
	char		*created;
	char		*updated;
	unsigned	 set;		/* 1 << SUB_* for fields given */
};

void	 sub_init(struct subscriber *);
void	 sub_release(struct subscriber *);

/*
 * Check and store one field given as text.  An empty value clears an
 * optional field (star and locale go back to their defaults); the email
 * and org cannot be empty.  now: the run's clock (dates may not be in the
 * future).  0, or -ERR_INVAL with a message saying what is wrong and how
 * to write it.
 */
int	 sub_set_field(struct subscriber *, enum sub_field, const char *value,
	    const struct products *, time_t now, struct err *);

/* Load the declarer with this (checked) address; -ERR_NOTFOUND if none. */
int	 sub_get(struct db *, const char *email, struct subscriber *,
	    struct err *);

/* 1 if the address is on the suppression list (removed, purged,
 * unsubscribed, bounced), with the reason in reason (32 bytes) if given. */
int	 sub_suppressed(struct db *, const char *email, char *reason,
	    struct err *);

/* The suppression hash of an address: hex SHA-256 of the address
 * lower-cased whole (suppress more, never less).  out: 65 bytes. */
void	 sub_email_hash(const char *email, char *out);

/*
 * Add a new declarer (email and org set).  -ERR_EXISTS if the address is
 * there already; -ERR_INVAL if it is suppressed, unless resubscribe.
 */
int	 sub_add(struct db *, struct subscriber *, int resubscribe,
	    time_t now, struct err *);

enum sub_outcome { SUB_ADDED, SUB_UPDATED, SUB_UNCHANGED, SUB_SUPPRESSED };

/*
 * Import one row: add it, or update the fields in s->set of the existing
 * declarer.  A new address on the suppression list is not added
 * (SUB_SUPPRESSED); an existing declarer keeps its status.  check_supp:
 * 0 only when the caller knows the suppression list is empty (a bulk
 * import saves a hash and a lookup per row).
 */
int	 sub_upsert(struct db *, struct subscriber *, time_t now,
	    int check_supp, enum sub_outcome *, struct err *);

/* Add s if its address is new (its self-diagnosis goes in the history):
 * 1 added (s->id set), 0 the address exists (nothing changed).  No
 * suppression check: for callers that made it. */
int	 sub_insert_new(struct db *, struct subscriber *, time_t now,
	    struct err *);

/* The id of the declarer with this address: > 0, 0 if none, or -ERR_DB. */
long long sub_id(struct db *, const char *email, struct err *);

/* The highest id ever given to a declarer (ids are never reused): any
 * id above it was added after this call.  >= 0, or -ERR_DB. */
long long sub_last_id(struct db *, struct err *);

/* sub_upsert() for an address known to be stored: update only. */
int	 sub_refresh(struct db *, struct subscriber *, time_t now,
	    enum sub_outcome *, struct err *);

/* 1 if the suppression list holds any address. */
int	 sub_any_suppressed(struct db *, struct err *);

/* Update the fields in patch->set of the declarer patch->email.  Records
 * a new self-diagnosis (and score, >= 0 to record one) in the history.
 * Returns 1 if anything changed, 0 if not. */
int	 sub_update(struct db *, const struct subscriber *patch, int score,
	    time_t now, struct err *);

/* Change a declarer's status (active re-activates and lifts the
 * suppression); reason is free text for the record. */
int	 sub_set_status(struct db *, const char *email, const char *status,
	    const char *reason, time_t now, struct err *);

/*
 * Remove: status 'removed', a suppression record, queued mail cancelled.
 * With purge: the row and all personal data erased (outbox rows keep no
 * address), only the suppression hash stays.
 */
int	 sub_remove(struct db *, const char *email, int purge, time_t now,
	    struct err *);

struct sub_filter {
	const char	*status;	/* NULL: any */
	int		 star;		/* 0: any */
	const char	*product;	/* NULL: any */
};

/* Call fn for each declarer matching f, in id order; fn's non-zero
 * return stops and is returned. */
int	 sub_each(struct db *, const struct sub_filter *f,
	    int (*fn)(const struct subscriber *, void *), void *arg,
	    struct err *);

/* One declarer as a JSON object (SPEC.md field names), compact, no
 * newline; caller frees. */
char	*sub_to_json(const struct subscriber *);

#endif
