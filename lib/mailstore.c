#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "mailstore.h"
#include "xalloc.h"

struct mailstore {
	int	 maildir;	/* 1 maildir, 0 mbox */
	char	*path;
	char	 host[128];
	int	 dirfd_new;
};

/*
 * Run as root (an admin's `sudo samail send`) on a store whose directory
 * belongs to another user (the service user's state directory): what
 * root creates there is handed to that user, as the run lock is
 * (lib/lock.c), or every later run as that user fails on it.  1 and the
 * owner of path's directory when that applies.
 */
static int
hand_over_to(const char *path, uid_t *uid, gid_t *gid)
{
	struct stat st;
	char *dir, *slash;
	int yes;

	if (geteuid() != 0)
		return 0;
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, strlen(dir) + 1, "%s", ".");
	else
		slash[slash == dir] = '\0';
	if ((yes = stat(dir, &st) == 0 && st.st_uid != 0)) {
		*uid = st.st_uid;
		*gid = st.st_gid;
	}
	free(dir);
	return yes;
}

static int
mkdir_p(const char *path, mode_t mode, struct err *e)
{
	char *p = xstrdup(path), *s;
	int rc = 0;

	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, mode) == 0) {
				uid_t uid;
				gid_t gid;

				/* lchown: the directory's owner may have put
				 * a symlink in its place since (to /etc). */
				if (hand_over_to(p, &uid, &gid))
					(void)!lchown(p, uid, gid);
			} else if (errno != EEXIST) {
				rc = err_set(e, ERR_CANTCREAT, "cannot create "
				    "'%s': %s", p, strerror(errno));
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return rc;
}

int
mailstore_open(struct mailstore **out, const char *spec, struct err *e)
{
	struct mailstore *m;
	char *sub;
	int rc;

	*out = NULL;
	m = xcalloc(1, sizeof(*m));
	m->dirfd_new = -1;
	if (strncmp(spec, "maildir:", 8) == 0) {
		m->maildir = 1;
		m->path = xstrdup(spec + 8);
	} else if (strncmp(spec, "mbox:", 5) == 0)
		m->path = xstrdup(spec + 5);
	else {
		free(m);
		return err_set(e, ERR_CONFIG, "transport '%s' is not maildir: "
		    "or mbox:", spec);
	}
	if (gethostname(m->host, sizeof(m->host) - 1) < 0 || !*m->host)
		strcpy(m->host, "localhost");
	/* A maildir name may not hold '/' or ':'. */
	for (char *p = m->host; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	if (m->maildir) {
		static const char *const subs[] = { "tmp", "new", "cur" };

		for (size_t i = 0; i < 3; i++) {
			sub = xasprintf("%s/%s", m->path, subs[i]);
			rc = mkdir_p(sub, 0700, e);
			free(sub);
			if (rc < 0)
				goto fail;
		}
		sub = xasprintf("%s/new", m->path);
		m->dirfd_new = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (m->dirfd_new < 0) {
			/* Without it nothing could be made durable. */
			rc = err_set(e, ERR_IO, "cannot open '%s': %s", sub,
			    strerror(errno));
			free(sub);
			goto fail;
		}
		free(sub);
	} else {
		char *dir = xstrdup(m->path), *slash = strrchr(dir, '/');

		rc = 0;
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			rc = mkdir_p(dir, 0700, e);
		}
		free(dir);
		if (rc < 0)
			goto fail;
	}
	*out = m;
	return 0;
fail:
	mailstore_close(m);
	return rc;
}

void
mailstore_close(struct mailstore *m)
{
	if (m == NULL)
		return;
	if (m->dirfd_new >= 0)
		close(m->dirfd_new);
	free(m->path);
	free(m);
}

int
mailstore_can_check(const struct mailstore *m)
{
	return m->maildir;
}

int
mailstore_sync(struct mailstore *m, struct err *e)
{
	if (!m->maildir || m->dirfd_new < 0)
		return 0;
	if (syncfs(m->dirfd_new) < 0)
		return err_set(e, ERR_IO, "sync maildir '%s': %s", m->path,
		    strerror(errno));
	return 0;
}

const char *
mailstore_path(const struct mailstore *m)
{
	return m->path;
}

/* CRLF -> LF; mboxrd: ">From " quoting for an mbox. */
static void
to_local(struct buf *b, const char *msg, size_t len, int mbox)
{
	const char *p = msg, *end = msg + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t k = 0;

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (mbox) {
			while (k < n && p[k] == '>')
				k++;
			if (n - k >= 5 && memcmp(p + k, "From ", 5) == 0)
				buf_addch(b, '>');
		}
		buf_add(b, p, n);
		buf_addch(b, '\n');
		p = nl ? nl + 1 : end;
	}
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
deliver_maildir(struct mailstore *m, const char *key, struct buf *b,
    struct err *e)
{
	char *tmp, *dst;
	int fd, rc = 0;

	tmp = xasprintf("%s/tmp/%s.%s", m->path, key, m->host);
	dst = xasprintf("%s/new/%s.%s", m->path, key, m->host);
	/* A file left in tmp/ by a crashed run is ours to replace; O_EXCL
	 * and O_NOFOLLOW then refuse anything planted there instead. */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		rc = err_set(e, ERR_CANTCREAT, "cannot create '%s': %s", tmp,
		    strerror(errno));
		goto out;
	}
	/* No fsync here: mailstore_sync() makes a whole batch durable at
	 * once, before the batch is recorded as sent. */
	if (write_all(fd, b->data, b->len) < 0) {
		rc = err_set(e, ERR_IO, "write '%s': %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	/* rename() is atomic: a reader sees the whole message or none. */
	if (rename(tmp, dst) < 0) {
		rc = err_set(e, ERR_IO, "move '%s' into new/: %s", tmp,
		    strerror(errno));
		unlink(tmp);
		goto out;
	}
out:
	free(tmp);
	free(dst);
	return rc;
}

static int
deliver_mbox(struct mailstore *m, struct buf *b, time_t now, struct err *e)
{
	struct buf all = BUF_INIT(0);
	char stamp[64];
	struct tm tm;
	struct stat st;
	int fd, rc = 0;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%a %b %e %H:%M:%S %Y", &tm);
	buf_addf(&all, "From MAILER-DAEMON %s\n", stamp);
	buf_add(&all, b->data, b->len);
	buf_addch(&all, '\n');
	fd = open(m->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = err_set(e, ERR_CANTCREAT, "cannot open mbox '%s': %s",
		    m->path, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
		rc = err_set(e, ERR_IO, "lock mbox '%s': %s", m->path,
		    strerror(errno));
		close(fd);
		goto out;
	}
	{
		uid_t uid;
		gid_t gid;

		/* Only a file of its own: O_NOFOLLOW stops a symlink, not
		 * a hard link the directory's owner made to a file of
		 * root's (/etc/shadow), which would be handed over. */
		if (st.st_uid == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    hand_over_to(m->path, &uid, &gid))
			(void)!fchown(fd, uid, gid);
	}
	/* One write; on failure cut the file back so no half message stays. */
	if (write_all(fd, all.data, all.len) < 0 || fsync(fd) < 0) {
		rc = err_set(e, ERR_IO, "write mbox '%s': %s", m->path,
		    strerror(errno));
		if (ftruncate(fd, st.st_size) < 0)
			rc = err_set(e, ERR_IO, "mbox '%s' may hold a partial "
			    "message at offset %lld", m->path,
			    (long long)st.st_size);
	}
	close(fd);
out:
	buf_release(&all);
	return rc;
}

int
mailstore_deliver(struct mailstore *m, const char *key, const char *msg,
    size_t len, time_t now, struct err *e)
{
	struct buf b = BUF_INIT(0);
	int rc;

	for (const char *p = key; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		    *p == '-'))
			return err_set(e, ERR_SOFTWARE, "bad maildir key '%s'", key);
	to_local(&b, msg, len, !m->maildir);
	rc = m->maildir ? deliver_maildir(m, key, &b, e) :
	    deliver_mbox(m, &b, now, e);
	buf_release(&b);
	return rc;
}

int
mailstore_has(struct mailstore *m, const char *key)
{
	char *p, *prefix;
	size_t plen;
	DIR *d;
	struct dirent *de;
	int found = 0;

	if (!m->maildir)
		return 0;
	p = xasprintf("%s/new/%s.%s", m->path, key, m->host);
	found = access(p, F_OK) == 0;
	free(p);
	if (found)
		return 1;
	/* A reader may have moved it to cur/ and added ":2,FLAGS". */
	prefix = xasprintf("%s.%s", key, m->host);
	plen = strlen(prefix);
	p = xasprintf("%s/cur", m->path);
	if ((d = opendir(p)) != NULL) {
		while (!found && (de = readdir(d)) != NULL)
			if (strncmp(de->d_name, prefix, plen) == 0 &&
			    (de->d_name[plen] == '\0' || de->d_name[plen] == ':'))
				found = 1;
		closedir(d);
	}
	free(p);
	free(prefix);
	return found;
}
