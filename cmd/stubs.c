/*
 * Weak defaults for commands and hooks that a module provides when it is
 * built; each is replaced by the strong definition in cmd_<name>.c.
 */
#include <stdio.h>
#include <sysexits.h>

#include "cmd.h"

#define STUB(fn)							\
int __attribute__((weak))						\
fn(struct ctx *ctx, int argc, char **argv)				\
{									\
	(void)argc;							\
	(void)argv;							\
	fprintf(stderr, "samail %s: not available in this build\n",	\
	    ctx->cmdname);						\
	return EX_SOFTWARE;						\
}

STUB(cmd_feed)
STUB(cmd_advisory)
STUB(cmd_newsletter)
STUB(cmd_remind)
STUB(cmd_send)
STUB(cmd_run)
STUB(cmd_status)
STUB(cmd_unsubscribe)
STUB(cmd_serve)
STUB(cmd_bounce)

int __attribute__((weak))
cmd_init_feeds(struct ctx *ctx)
{
	(void)ctx;
	return 0;
}
