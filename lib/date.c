#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "date.h"
#include "err.h"

/* Howard Hinnant's days_from_civil / civil_from_days. */
long
date_days(int y, int m, int d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
date_civil(long z, int *yp, int *mp, int *dp)
{
	long era, doe, yoe, y, doy, mp_, d, m;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp_ = (5 * doy + 2) / 153;
	d = doy - (153 * mp_ + 2) / 5 + 1;
	m = mp_ < 10 ? mp_ + 3 : mp_ - 9;
	*yp = (int)(y + (m <= 2));
	*mp = (int)m;
	*dp = (int)d;
}

int
date_month_length(int y, int m)
{
	static const int len[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return len[m - 1];
}

int
date_valid(int y, int m, int d)
{
	return y >= 1900 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 &&
	    d <= date_month_length(y, m);
}

/* Read 1..maxd digits; returns the number of digits read. */
static int
digits(const char **sp, int maxd, int *out)
{
	const char *s = *sp;
	int n = 0, v = 0;

	while (n < maxd && isdigit((unsigned char)s[n])) {
		v = v * 10 + (s[n] - '0');
		n++;
	}
	*out = v;
	*sp = s + n;
	return n;
}

int
date_parse(const char *s, long *days, struct err *e)
{
	const char *p = s;
	int y, m, d;
	char sep;

	if (digits(&p, 4, &y) != 4 || (*p != '-' && *p != '/'))
		goto bad;
	sep = *p++;
	if (digits(&p, 2, &m) < 1 || *p != sep)
		goto bad;
	p++;
	if (digits(&p, 2, &d) < 1 || *p != '\0')
		goto bad;
	if (!date_valid(y, m, d))
		return err_set(e, ERR_INVAL, "'%s' is not a real date", s);
	*days = date_days(y, m, d);
	return 0;
bad:
	return err_set(e, ERR_INVAL,
	    "'%s' is not a date; write YYYY-MM-DD or YYYY/MM/DD", s);
}

/* Write v as n digits (no printf: this runs for every row of a batch). */
static void
put_digits(char *p, int v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void
date_format(long days, char *out)
{
	int y, m, d;

	date_civil(days, &y, &m, &d);
	put_digits(out, y, 4);
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = '\0';
}

void
date_format_ja(long days, char *out)
{
	int y, m, d;

	date_civil(days, &y, &m, &d);
	snprintf(out, DATE_JA_MAX, "%d年%d月%d日", y, m, d);
}

long
date_add_months(long days, int n)
{
	int y, m, d, len;
	long mi;

	date_civil(days, &y, &m, &d);
	mi = (long)y * 12 + (m - 1) + n;
	y = (int)(mi >= 0 ? mi / 12 : (mi - 11) / 12);
	m = (int)(mi - (long)y * 12) + 1;
	len = date_month_length(y, m);
	if (d > len)
		d = len;
	return date_days(y, m, d);
}

int
date_parse_timestamp(const char *s, time_t *t, struct err *e)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;

	if (digits(&p, 4, &y) != 4 || *p++ != '-' ||
	    digits(&p, 2, &mo) != 2 || *p++ != '-' ||
	    digits(&p, 2, &d) != 2 || (*p != 'T' && *p != ' '))
		goto bad;
	p++;
	if (digits(&p, 2, &h) != 2 || *p++ != ':' ||
	    digits(&p, 2, &mi) != 2 || *p++ != ':' ||
	    digits(&p, 2, &sec) != 2)
		goto bad;
	if (*p == 'Z' && p[1] == '\0')
		;
	else if ((*p == '+' || *p == '-') && (sign = *p == '-' ? -1 : 1)) {
		p++;
		if (digits(&p, 2, &oh) != 2 || *p++ != ':' ||
		    digits(&p, 2, &om) != 2 || *p != '\0')
			goto bad;
	} else
		goto bad;
	if (!date_valid(y, mo, d) || h > 23 || mi > 59 || sec > 60 ||
	    oh > 14 || om > 59)
		goto bad;
	*t = (time_t)date_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    sign * (oh * 3600 + om * 60);
	return 0;
bad:
	return err_set(e, ERR_INVAL,
	    "'%s' is not a timestamp; write YYYY-MM-DDTHH:MM:SSZ", s);
}

void
date_format_timestamp(time_t t, char *out)
{
	long days = (long)(t >= 0 ? t / 86400 : (t - 86399) / 86400);
	long secs = (long)(t - (time_t)days * 86400);
	int y, m, d;

	date_civil(days, &y, &m, &d);
	date_format(days, out);
	out[10] = 'T';
	put_digits(out + 11, (int)(secs / 3600), 2);
	out[13] = ':';
	put_digits(out + 14, (int)(secs / 60 % 60), 2);
	out[16] = ':';
	put_digits(out + 17, (int)(secs % 60), 2);
	out[19] = 'Z';
	out[20] = '\0';
}

long
date_jst_day(time_t t)
{
	t += DATE_JST_OFFSET;
	return (long)(t >= 0 ? t / 86400 : (t - 86399) / 86400);
}

time_t
date_jst_time(long days, int hour, int minute)
{
	return (time_t)days * 86400 + hour * 3600 + minute * 60 -
	    DATE_JST_OFFSET;
}

int
date_parse_period(const char *s, int *y, int *m, struct err *e)
{
	const char *p = s;

	if (digits(&p, 4, y) != 4 || *p++ != '-' || digits(&p, 2, m) != 2 ||
	    *p != '\0' || *m < 1 || *m > 12 || *y < 1900)
		return err_set(e, ERR_INVAL,
		    "'%s' is not a period; write YYYY-MM (e.g. 2026-10)", s);
	return 0;
}
