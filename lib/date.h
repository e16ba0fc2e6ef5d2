/*
 * date — calendar dates and timestamps.
 *
 * A calendar date is a day number: days since 1970-01-01 (proleptic
 * Gregorian).  Timestamps are time_t in UTC.  Japan time is UTC+9 all year
 * (no daylight saving since 1951), so Japan-time conversions are plain
 * arithmetic and do not depend on the machine's TZ or zoneinfo.
 */
#ifndef SAMAIL_DATE_H
#define SAMAIL_DATE_H

#include <time.h>

#define DATE_JST_OFFSET	(9 * 3600)

struct err;

/* Day number of y-m-d (m 1..12, d 1..31); the date must be valid. */
long	 date_days(int y, int m, int d);
/* y-m-d of a day number. */
void	 date_civil(long days, int *y, int *m, int *d);
/* 1 if y-m-d is a real date between 1900 and 9999, else 0. */
int	 date_valid(int y, int m, int d);
int	 date_month_length(int y, int m);

/*
 * Parse a calendar date: YYYY-MM-DD or YYYY/MM/DD; month and day may have
 * one digit (Excel writes 2024/4/1).  0, or -ERR_INVAL with a message
 * naming the problem.
 */
int	 date_parse(const char *s, long *days, struct err *e);
/* YYYY-MM-DD into out (at least 11 bytes). */
void	 date_format(long days, char *out);
/* As Japanese text writes the day, 2026年10月16日, into out (at least
 * DATE_JA_MAX bytes). */
#define DATE_JA_MAX	24
void	 date_format_ja(long days, char *out);

/* The same day n months later (n may be negative), clamped to the end of
 * a shorter month: Jan 31 + 1 month = Feb 28 or 29. */
long	 date_add_months(long days, int n);

/* Parse YYYY-MM-DDTHH:MM:SSZ (the --now format; also accepts +HH:MM
 * offsets).  0 or -ERR_INVAL. */
int	 date_parse_timestamp(const char *s, time_t *t, struct err *e);
/* YYYY-MM-DDTHH:MM:SSZ into out (at least 21 bytes). */
void	 date_format_timestamp(time_t t, char *out);

/* The calendar day in Japan at instant t. */
long	 date_jst_day(time_t t);
/* The instant of hour:minute Japan time on a calendar day. */
time_t	 date_jst_time(long days, int hour, int minute);

/* Parse a period YYYY-MM into year and month.  0 or -ERR_INVAL. */
int	 date_parse_period(const char *s, int *y, int *m, struct err *e);

#endif
