/*
 * schema — the numbered migrations.  Migration N brings a database from
 * user_version N-1 to N; `samail init` applies what is missing, each in its
 * own transaction.  Never edit a migration that has shipped: add one.
 *
 * Conventions: timestamps are TEXT 'YYYY-MM-DDTHH:MM:SSZ' (UTC), calendar
 * dates TEXT 'YYYY-MM-DD'.  Lists that are only ever read whole (product
 * tags, CVE ids) are stored as comma-separated text.
 */
#include <stddef.h>

#include "schema.h"

static const char m1[] =
/* Declarers.  email is stored as given with its domain lower-cased, and
 * is unique without regard to case: RFC 5321 lets a local part be
 * case-sensitive, but no mailbox provider a declarer uses treats
 * Taro@ and taro@ as two people, and suppression must match both.
 * AUTOINCREMENT: an id is never reused, so an old unsubscribe link or
 * return address can never name a later declarer. */
"CREATE TABLE subscriber ("
"  id        INTEGER PRIMARY KEY AUTOINCREMENT,"
"  email     TEXT NOT NULL UNIQUE COLLATE NOCASE,"
"  org       TEXT NOT NULL,"
"  name      TEXT,"
"  star      INTEGER NOT NULL DEFAULT 1 CHECK (star IN (1, 2)),"
"  declared  TEXT,"
"  assessed  TEXT,"
"  products  TEXT NOT NULL DEFAULT '',"		/* 'tag,tag' sorted */
"  industry  TEXT,"
"  employees INTEGER CHECK (employees IS NULL OR employees >= 0),"
"  locale    TEXT NOT NULL DEFAULT 'ja' CHECK (locale IN ('ja', 'en')),"
"  status    TEXT NOT NULL DEFAULT 'active'"
"            CHECK (status IN ('active', 'unsubscribed', 'bounced', 'removed')),"
"  status_reason TEXT,"
"  status_changed TEXT,"
"  created   TEXT NOT NULL,"
"  updated   TEXT NOT NULL"
");"
/* Self-diagnosis history: one row per recorded 自社診断. */
"CREATE TABLE assessment ("
"  id            INTEGER PRIMARY KEY,"
"  subscriber_id INTEGER NOT NULL REFERENCES subscriber (id) ON DELETE CASCADE,"
"  assessed      TEXT NOT NULL,"
"  score         INTEGER CHECK (score IS NULL OR score BETWEEN 0 AND 100),"
"  recorded      TEXT NOT NULL"
");"
"CREATE INDEX assessment_subscriber ON assessment (subscriber_id, assessed);"
/* Addresses that must never get bulk mail again, by hash only, so a purge
 * can keep suppressing an address it no longer stores. */
"CREATE TABLE suppression ("
"  hash    TEXT PRIMARY KEY,"			/* token_email_hash() */
"  reason  TEXT NOT NULL,"			/* removed, purged, unsubscribed, bounced */
"  created TEXT NOT NULL"
") WITHOUT ROWID;"
/* Advisory sources. */
"CREATE TABLE feed ("
"  id            INTEGER PRIMARY KEY,"
"  name          TEXT NOT NULL UNIQUE,"
"  url           TEXT NOT NULL,"
"  alert         INTEGER NOT NULL DEFAULT 0,"	/* IPA 重要なセキュリティ情報 */
"  etag          TEXT,"
"  last_modified TEXT,"
"  last_fetch    TEXT,"
"  last_success  TEXT,"
"  last_status   INTEGER,"
"  items         INTEGER NOT NULL DEFAULT 0,"
"  failures      INTEGER NOT NULL DEFAULT 0,"
"  last_error    TEXT,"
"  created       TEXT NOT NULL"
");"
"CREATE TABLE advisory ("
"  id           INTEGER PRIMARY KEY,"
"  feed_id      INTEGER NOT NULL REFERENCES feed (id) ON DELETE CASCADE,"
"  guid         TEXT NOT NULL,"
"  ident        TEXT,"				/* JVN#..., JVNDB-... */
"  title        TEXT NOT NULL,"
"  link         TEXT,"
"  summary      TEXT,"
"  published    TEXT,"
"  updated      TEXT,"
"  cves         TEXT NOT NULL DEFAULT '',"
"  cvss         REAL,"
"  cvss_version TEXT,"
"  cvss_vector  TEXT,"
"  severity     TEXT,"
"  cpes         TEXT NOT NULL DEFAULT '',"
"  products     TEXT NOT NULL DEFAULT '',"
"  hash         TEXT NOT NULL,"			/* of the content, to see changes */
"  first_seen   TEXT NOT NULL,"
"  last_seen    TEXT NOT NULL,"
"  UNIQUE (feed_id, guid)"
");"
"CREATE INDEX advisory_published ON advisory (published);"
"CREATE TABLE advisory_change ("
"  id          INTEGER PRIMARY KEY,"
"  advisory_id INTEGER NOT NULL REFERENCES advisory (id) ON DELETE CASCADE,"
"  changed     TEXT NOT NULL,"
"  fields      TEXT NOT NULL"			/* 'title,updated,...' */
");"
/* A campaign is one mailing: a month's newsletter, or the reminders built
 * on one day.  content freezes what rendering needs (advisories,
 * templates) so a message re-sent later is the identical message. */
"CREATE TABLE campaign ("
"  id       INTEGER PRIMARY KEY,"
"  kind     TEXT NOT NULL CHECK (kind IN ('newsletter', 'reminder')),"
"  name     TEXT NOT NULL UNIQUE,"		/* newsletter-2026-10 */
"  period   TEXT,"
"  created  TEXT NOT NULL,"
"  content  TEXT NOT NULL DEFAULT '{}'"
");"
/* One row per message to send.  data freezes the declarer's side of the
 * rendering at queue time. */
"CREATE TABLE outbox ("
"  id            INTEGER PRIMARY KEY,"
"  campaign_id   INTEGER NOT NULL REFERENCES campaign (id) ON DELETE CASCADE,"
"  subscriber_id INTEGER REFERENCES subscriber (id) ON DELETE SET NULL,"
"  item          TEXT NOT NULL DEFAULT '',"
"  rcpt          TEXT NOT NULL,"
"  data          TEXT NOT NULL DEFAULT '{}',"
"  state         TEXT NOT NULL DEFAULT 'queued' CHECK (state IN"
"                ('queued', 'inflight', 'sent', 'deferred', 'failed', 'held', 'cancelled')),"
"  attempts      INTEGER NOT NULL DEFAULT 0,"
"  next_try      TEXT,"
"  queued_at     TEXT NOT NULL,"
"  sent_at       TEXT,"
"  relay         TEXT,"
"  relay_id      TEXT,"
"  last_error    TEXT,"
"  UNIQUE (campaign_id, subscriber_id, item)"
");"
"CREATE INDEX outbox_state ON outbox (state, next_try);"
/* Reminders: each (declarer, due date, offset) at most once. */
"CREATE TABLE reminder ("
"  id            INTEGER PRIMARY KEY,"
"  subscriber_id INTEGER NOT NULL REFERENCES subscriber (id) ON DELETE CASCADE,"
"  kind          TEXT NOT NULL CHECK (kind IN ('reassess', 'stepup')),"
"  due           TEXT NOT NULL,"
"  offset_days   INTEGER NOT NULL,"		/* days before due; < 0 overdue */
"  state         TEXT NOT NULL DEFAULT 'queued'"
"                CHECK (state IN ('queued', 'cancelled', 'skipped')),"
"  outbox_id     INTEGER REFERENCES outbox (id) ON DELETE SET NULL,"
"  created       TEXT NOT NULL,"
"  UNIQUE (subscriber_id, due, offset_days)"
");"
/* Bounces received, for the soft-bounce rule and status. */
"CREATE TABLE bounce ("
"  id            INTEGER PRIMARY KEY,"
"  subscriber_id INTEGER REFERENCES subscriber (id) ON DELETE CASCADE,"
"  received      TEXT NOT NULL,"
"  kind          TEXT NOT NULL CHECK (kind IN ('hard', 'soft')),"
"  status        TEXT,"				/* 5.1.1 */
"  diagnostic    TEXT,"
"  message_id    TEXT"
");"
"CREATE INDEX bounce_subscriber ON bounce (subscriber_id, received);"
/* Runs of `samail run`, for status and the monthly catch-up. */
"CREATE TABLE run ("
"  id        INTEGER PRIMARY KEY,"
"  kind      TEXT NOT NULL,"
"  started   TEXT NOT NULL,"
"  finished  TEXT,"
"  exit_code INTEGER,"
"  summary   TEXT"
");"
"CREATE TABLE meta ("
"  key   TEXT PRIMARY KEY,"
"  value TEXT"
") WITHOUT ROWID;";

/*
 * 2: the same CHECK constraints, written so that SQLite tests them with
 * plain comparisons.  An IN list of three or more values is tested
 * through a temporary b-tree built for every row written (about a fifth
 * of an import's time, and a part of each send's state change).  Only
 * the text of the constraints changes, not what they allow nor the
 * file format: SQLite's documented procedure for that edits the stored
 * schema in place (https://sqlite.org/lang_altertable.html, "making
 * other kinds of table schema changes"); db_migrate() then bumps
 * schema_version so that every open connection re-reads it.
 */
static const char m2[] =
"PRAGMA writable_schema = ON;"
"UPDATE sqlite_master SET sql = replace(sql,"
"  'CHECK (status IN (''active'', ''unsubscribed'', ''bounced'', ''removed''))',"
"  'CHECK (status = ''active'' OR status = ''unsubscribed'' OR "
"status = ''bounced'' OR status = ''removed'')')"
"  WHERE type = 'table' AND name = 'subscriber';"
"UPDATE sqlite_master SET sql = replace(sql,"
"  'CHECK (state IN                (''queued'', ''inflight'', ''sent'', "
"''deferred'', ''failed'', ''held'', ''cancelled''))',"
"  'CHECK (state = ''queued'' OR state = ''inflight'' OR state = ''sent'' "
"OR state = ''deferred'' OR state = ''failed'' OR state = ''held'' OR "
"state = ''cancelled'')')"
"  WHERE type = 'table' AND name = 'outbox';"
"UPDATE sqlite_master SET sql = replace(sql,"
"  'CHECK (state IN (''queued'', ''cancelled'', ''skipped''))',"
"  'CHECK (state = ''queued'' OR state = ''cancelled'' OR "
"state = ''skipped'')')"
"  WHERE type = 'table' AND name = 'reminder';"
"PRAGMA writable_schema = OFF;";

/*
 * 3: whether a bounce was tied to a message we sent (by VERP or by our
 * Message-ID).  One found only by the failed address it names could have
 * been written by anybody: it is recorded, and must not count towards
 * the soft-bounce limit either.  Rows from before: counted as before.
 */
static const char m3[] =
"ALTER TABLE bounce ADD COLUMN verified INTEGER NOT NULL DEFAULT 1;";

/*
 * 4: bounce kind 'policy': a refusal for who sent the mail or what it is
 * (block lists, SPF/DKIM/DMARC, spam), not for the address; it changes
 * nobody's status (lib/bounce.h).  The CHECK allows one more value, so
 * every stored row still satisfies it: the stored schema is edited in
 * place as in 2, written as comparisons for the same reason.  replace()
 * leaves a text it does not find as it was: the check at the end fails
 * the migration then, rather than leave a bounce table that refuses
 * 'policy' rows.
 */
static const char m4[] =
"PRAGMA writable_schema = ON;"
"UPDATE sqlite_master SET sql = replace(sql,"
"  'CHECK (kind IN (''hard'', ''soft''))',"
"  'CHECK (kind = ''hard'' OR kind = ''soft'' OR kind = ''policy'')')"
"  WHERE type = 'table' AND name = 'bounce';"
"PRAGMA writable_schema = OFF;"
/* Fails the migration (its transaction is rolled back) unless the
 * constraint now reads as intended. */
"CREATE TEMP TABLE m4_check (ok INTEGER NOT NULL CHECK (ok = 1));"
"INSERT INTO m4_check SELECT count(*) FROM sqlite_master WHERE type = "
"  'table' AND name = 'bounce' AND sql LIKE '%kind = ''policy''%';"
"DROP TABLE m4_check;";

/*
 * 5: the honorifics a sheet carries, dropped from the declarers stored
 * before samail did so itself (lib/subscriber.c drop_honorific(), by the
 * same rule): a contact name's trailing 様 or さま, or 殿 after a blank
 * (the mail writes "{{name}} 様"), an organisation's trailing 御中 (the
 * mail writes ご担当者様 under it), with the blanks before them; a value
 * that would be left empty stays.  Also the mark that campaigns built
 * from here on hold keys an older samail does not read (rule_month,
 * published_ja, last_assessed_label): it refuses this database ("newer
 * than this samail knows") rather than send their mail wrong.
 */
#define M5_BLANKS "' ' || char(9) || char(12288)"
#define M5_CUT(col, n) "rtrim(substr(" col ", 1, length(" col ") - " #n \
	"), " M5_BLANKS ")"
static const char m5[] =
"UPDATE subscriber SET name = CASE"
"  WHEN name LIKE '%様' AND " M5_CUT("name", 1) " <> ''"
"    THEN " M5_CUT("name", 1)
"  WHEN name LIKE '%さま' AND " M5_CUT("name", 2) " <> ''"
"    THEN " M5_CUT("name", 2)
"  WHEN (name LIKE '% 殿' OR name LIKE '%' || char(9) || '殿' OR"
"    name LIKE '%' || char(12288) || '殿') AND " M5_CUT("name", 1) " <> ''"
"    THEN " M5_CUT("name", 1)
"  ELSE name END"
"  WHERE name LIKE '%様' OR name LIKE '%さま' OR name LIKE '%殿';"
"UPDATE subscriber SET org = " M5_CUT("org", 2)
"  WHERE org LIKE '%御中' AND " M5_CUT("org", 2) " <> '';";

static const char *const migrations[] = {
	m1,
	m2,
	m3,
	m4,
	m5,
};

size_t
schema_count(void)
{
	return sizeof(migrations) / sizeof(migrations[0]);
}

const char *
schema_migration(size_t version)
{
	if (version < 1 || version > schema_count())
		return NULL;
	return migrations[version - 1];
}
