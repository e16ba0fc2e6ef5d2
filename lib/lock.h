/*
 * lock — one sending run at a time per database.
 *
 * An flock(2) on "DBPATH.lock" beside the database (beside the file itself
 * when DBPATH is a symlink: every name of it shares one lock).  The kernel drops the
 * lock when its holder dies, so a run killed with SIGKILL never blocks the
 * next one (a stale file is harmless: only the lock counts; a file
 * deleted under a live run is not, for the next run locks a new one, so
 * a run that waited on the old file checks it is still the one the path
 * names before it goes on).  The file
 * holds the holder's PID, start time and command ("pid N, started T,
 * samail run daily"), for the message a waiting run prints and for
 * `samail status`.
 */
#ifndef SAMAIL_LOCK_H
#define SAMAIL_LOCK_H

#include <time.h>

struct err;

struct lock {
	int	 fd;
	char	*path;
};

/*
 * Take the lock for the database at db_path, waiting up to timeout
 * seconds; what (may be NULL) names the command that takes it ("run
 * daily", "send").  0, or -ERR_LOCKED (exit 75) naming the holder's PID,
 * start time and command, or -ERR_CANTCREAT.
 */
int	 lock_take(struct lock *, const char *db_path, long timeout,
	    const char *what, struct err *);
/* The lock file's path for the database at db_path (allocated). */
char	*lock_file_path(const char *db_path);
/* Release (safe on a lock never taken). */
void	 lock_release(struct lock *);

#endif
