/*
 * schema — the database's numbered migrations (see schema.c).
 */
#ifndef SAMAIL_SCHEMA_H
#define SAMAIL_SCHEMA_H

#include <stddef.h>

/* The newest schema version this samail knows. */
size_t	 schema_count(void);
/* The SQL that brings version-1 to version (1-based); NULL if none. */
const char *schema_migration(size_t version);

#endif
