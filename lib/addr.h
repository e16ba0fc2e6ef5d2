/*
 * addr — e-mail address validation at the boundary.
 *
 * Accepted: dot-atom local part (RFC 5322 atext and dots, no leading,
 * trailing or doubled dot) of at most 64 bytes, one '@', a domain of
 * LDH labels (1-63 bytes, not starting or ending with '-') with at least
 * one dot, at most 253 bytes; 254 bytes in all.  An internationalised
 * domain (会社.jp) is accepted and kept in its ASCII form (xn--...).
 * Refused: quoted local parts, address literals, a non-ASCII local part,
 * any space or control character — a CR or LF in an address would end up
 * in an SMTP command or a mail header.
 */
#ifndef SAMAIL_ADDR_H
#define SAMAIL_ADDR_H

#include <stddef.h>

struct err;

#define ADDR_MAX	254

/*
 * Check an address and write its normal form (the domain lower-cased,
 * in ASCII; the local part is case-sensitive by RFC 5321 and kept as
 * given) into
 * out (ADDR_MAX + 1 bytes).  0, or -ERR_INVAL with a message that says
 * what is wrong and, where it can, how to fix it.
 */
int	 addr_check(const char *s, char *out, struct err *e);

/*
 * Split "Display Name <addr@example.jp>" or a bare address into its name
 * (may be empty; no control characters, valid UTF-8) and checked address.
 * name and addr are allocated; caller frees.  0 or -ERR_INVAL.
 */
int	 addr_parse_mailbox(const char *s, char **name, char **addr,
	    struct err *e);

/* The domain part of a checked address. */
const char *addr_domain(const char *addr);

#endif
