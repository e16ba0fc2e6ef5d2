/*
 * remind — self-diagnosis reminders (placeholder until the reminder
 * module lands: campaigns of kind "reminder" cannot be rendered yet).
 */
#include "campaign.h"
#include "err.h"

int
remind_prepare(struct campaign_run *c, struct err *e)
{
	return err_set(e, ERR_SOFTWARE, "campaign '%s': reminders are not "
	    "supported by this build", c->name);
}

int
remind_render_row(const struct campaign_run *c, const struct outbox_row *row,
    struct buf *out, struct err *e)
{
	(void)row;
	(void)out;
	return err_set(e, ERR_SOFTWARE, "campaign '%s': reminders are not "
	    "supported by this build", c->name);
}

void
remind_release(struct campaign_run *c)
{
	(void)c;
}
