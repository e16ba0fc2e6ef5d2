/*
 * mailstore — the local transports: a maildir (the default, so the job runs
 * on a machine with no mail server) or an mbox file.
 *
 * Maildir delivery is atomic and idempotent: the message is written and
 * fsync'ed under tmp/, then linked into new/ under a name derived from the
 * outbox row, so after a crash mailstore_has() tells whether an in-flight
 * message arrived, and it is never delivered twice.  Messages are stored
 * with LF line endings, as mail readers expect of local files.
 */
#ifndef SAMAIL_MAILSTORE_H
#define SAMAIL_MAILSTORE_H

#include <stddef.h>
#include <time.h>

struct err;
struct mailstore;

/* spec: "maildir:PATH" or "mbox:PATH".  Creates what is missing. */
int	 mailstore_open(struct mailstore **, const char *spec, struct err *);
void	 mailstore_close(struct mailstore *);

/* Deliver one message (CRLF or LF line endings).  key: a stable name for
 * this message ([A-Za-z0-9._-], e.g. "1790000000.M42"). */
int	 mailstore_deliver(struct mailstore *, const char *key,
	    const char *msg, size_t len, time_t now, struct err *);

/* 1 if the message with this key is in the maildir (new/ or cur/), 0 if
 * not; always 0 for an mbox (it cannot tell). */
int	 mailstore_has(struct mailstore *, const char *key);

/* 1 if mailstore_has() can tell (a maildir), 0 if not (an mbox). */
int	 mailstore_can_check(const struct mailstore *);

/*
 * Make every message delivered so far durable.  A maildir's deliveries
 * are written without an fsync each; this syncs them all with one
 * syncfs(2).  An mbox syncs on every delivery (a no-op here).
 */
int	 mailstore_sync(struct mailstore *, struct err *);

/* The path, for messages. */
const char *mailstore_path(const struct mailstore *);

#endif
