#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "date.h"
#include "err.h"
#include "lock.h"
#include "log.h"
#include "xalloc.h"

/* Close the lock file without touching it (we do not hold the lock). */
static void
drop(struct lock *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->path);
	l->path = NULL;
}

/* The holder's line ("pid N, started T, samail run daily"), or "". */
static void
read_holder(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

char *
lock_file_path(const char *db_path)
{
	char *real, *path;

	/* SQLite follows a symlink to the database and keeps its -wal and
	 * -shm beside the real file; the lock must be one file too, or a run
	 * through another name would not see the first. */
	if ((real = realpath(db_path, NULL)) == NULL)
		return xasprintf("%s.lock", db_path);
	path = xasprintf("%s.lock", real);
	free(real);
	return path;
}

int
lock_take(struct lock *l, const char *db_path, long timeout, const char *what,
    struct err *e)
{
	char info[128], holder[128] = "";
	struct timespec pause = { 0, 100 * 1000 * 1000 }, t0, t;
	time_t now;
	ssize_t n;
	int told = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);

	l->path = lock_file_path(db_path);
reopen:
	/* O_NOFOLLOW: a symlink planted here must not make us truncate
	 * whatever it points to. */
	l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (l->fd < 0) {
		int saved = errno, rc;

		/* Left by another user (root restoring a backup, a run as
		 * root before the database had its owner): say whose. */
		if (saved == EACCES || saved == EPERM) {
			struct passwd *pw = getpwuid(geteuid());
			char me[64];

			snprintf(me, sizeof(me), "%s", pw != NULL ? pw->pw_name :
			    "?");
			rc = err_set(e, ERR_CANTCREAT, "cannot open the lock file "
			    "'%s': %s: user %s cannot write it; run samail as "
			    "the user who owns the database, or, if %s is to run "
			    "it: chown %s: '%s'", l->path, strerror(saved), me,
			    me, me, l->path);
		} else
			rc = err_set(e, ERR_CANTCREAT, "cannot open the lock file "
			    "'%s': %s", l->path, strerror(saved));
		free(l->path);
		l->path = NULL;
		return rc;
	}
	/* Run as root on a database that belongs to the service user (an
	 * admin's `sudo samail send`): hand the new lock file to the
	 * database's owner, or every later cron run could not open it. */
	{
		struct stat dbst, lst;

		if (geteuid() == 0 && stat(db_path, &dbst) == 0 &&
		    fstat(l->fd, &lst) == 0 && lst.st_uid != dbst.st_uid)
			(void)!fchown(l->fd, dbst.st_uid, dbst.st_gid);
	}
	while (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int rc = err_set(e, ERR_IO, "lock '%s': %s", l->path,
			    strerror(errno));

			drop(l);
			return rc;
		}
		/* Said once, as an admin's `samail send` by hand may wait
		 * an hour ([run] lock_timeout) for a cron run to end. */
		if (!told && timeout > 0) {
			read_holder(l->fd, holder, sizeof(holder));
			log_info("waiting up to %ld s ([run] lock_timeout) for "
			    "another samail on this database (%s)", timeout,
			    *holder ? holder : "holder unknown");
			told = 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) /
		    1000000 >= timeout * 1000L) {
			read_holder(l->fd, holder, sizeof(holder));
			/* Not ours: the holder's line stays for status and
			 * the next waiter. */
			drop(l);
			return err_set(e, ERR_LOCKED, "another samail is running "
			    "on this database (%s); waited %ld s, try again later",
			    *holder ? holder : "holder unknown", timeout);
		}
		nanosleep(&pause, NULL);
	}
	/* The file locked must still be the one the path names: a lock
	 * file deleted under a live run (an admin taking it for a stale
	 * one) lets the next run create and lock a new one, and a run
	 * that waited on the old file would then run beside it.  Deleted
	 * (no link left), or another file under the name now; the inode
	 * number alone, as st_dev differs between stat() and fstat() on
	 * some overlay file systems, and the number of a file we hold open
	 * cannot be reused. */
	{
		struct stat fst, pst;

		if (fstat(l->fd, &fst) == 0 && (fst.st_nlink == 0 ||
		    (stat(l->path, &pst) == 0 ? pst.st_ino != fst.st_ino :
		    errno == ENOENT))) {
			close(l->fd);
			l->fd = -1;
			goto reopen;
		}
	}
	now = time(NULL);
	{
		char ts[21];

		date_format_timestamp(now, ts);
		/* "samail send" too: status must not take an admin's send
		 * for a run that died. */
		if (what != NULL)
			snprintf(info, sizeof(info), "pid %ld, started %s, "
			    "samail %.60s\n", (long)getpid(), ts, what);
		else
			snprintf(info, sizeof(info), "pid %ld, started %s\n",
			    (long)getpid(), ts);
	}
	if (ftruncate(l->fd, 0) == 0)
		n = pwrite(l->fd, info, strlen(info), 0);
	(void)n;
	return 0;
}

void
lock_release(struct lock *l)
{
	/* Empty the holder's line, but leave the file: unlinking it races
	 * with a waiter that opened it already. */
	if (l->fd >= 0 && l->path != NULL)
		(void)!ftruncate(l->fd, 0);
	drop(l);
}
