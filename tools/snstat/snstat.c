// SPDX-License-Identifier: MIT
/*
 * snstat: every sn ring of the system, from /proc/sn/rings.
 *
 *   snstat                 one listing (rates measured over 200 ms)
 *   snstat -w SECONDS      refreshes like top, rates per interval
 *   snstat --json          one JSON object per ring per line
 *   snstat -n COUNT        stops after COUNT refreshes (with -w)
 *   snstat --file PATH     reads PATH instead of /proc/sn/rings
 *   snstat --version       "snstat VERSION"; --help: the options, defaults
 *
 * The listing's header line ("# id type pid ...") names its fields; snstat
 * finds its columns by those names, so fields the module appends later are
 * carried into --json unchanged and never shift the ones it shows. Exits 2
 * with a clear message when the module is not loaded.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SNSTAT_PROC "/proc/sn/rings"
#define MAX_FIELDS 64

struct ring {
	char *val[MAX_FIELDS];		/* the line's fields, by column */
	unsigned int nval;
};

struct listing {
	char *buf;			/* the file, split in place */
	char *name[MAX_FIELDS];		/* header: field names */
	unsigned int nname;
	struct ring *rings;
	size_t nrings;
	double t;			/* when it was read, seconds */
};

/* columns snstat uses; -1 when the module does not list the field */
enum {
	F_ID, F_TYPE, F_PID, F_LANES, F_SLOTS, F_SLOT_SIZE, F_DEPTH,
	F_HOME_CPU, F_SLEEPERS, F_SENT, F_RECEIVED, F_KICKS, F_ARMED_CPU,
	F_LANES_LIVE, F_LANES_DEAD, F_RESERVED_LOST, F_CLAIMS_LOST, F_ENDED,
	F_ORPHANED,
	NF
};
static const char *const known[NF] = {
	"id", "type", "pid", "lanes", "slots", "slot_size", "depth",
	"home_cpu", "sleepers", "sent", "received", "kicks", "armed_cpu",
	"lanes_live", "lanes_dead", "reserved_lost", "claims_lost", "ended",
	"orphaned",
};

static const char *path = SNSTAT_PROC;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *p)
{
	FILE *f = fopen(p, "r");
	size_t len = 0, cap = 65536, r;
	char *buf;

	if (!f) {
		if (errno == ENOENT && !strcmp(p, SNSTAT_PROC))
			fprintf(stderr, "snstat: %s not found: the sn module is not loaded (load sn.ko: insmod sn.ko or modprobe sn)\n",
				p);
		else
			fprintf(stderr, "snstat: cannot read %s: %s\n", p,
				strerror(errno));
		exit(2);
	}
	buf = malloc(cap + 1);
	while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
		len += r;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	if (!buf) {
		fprintf(stderr, "snstat: out of memory\n");
		exit(2);
	}
	fclose(f);
	buf[len] = 0;
	return buf;
}

/* Splits @s at runs of spaces and tabs into at most @max fields. */
static unsigned int split(char *s, char **out, unsigned int max)
{
	unsigned int n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(s, " \t", &save); tok && n < max;
	     tok = strtok_r(NULL, " \t", &save))
		out[n++] = tok;
	return n;
}

static void read_listing(struct listing *l)
{
	char *line, *save = NULL;
	size_t cap = 0;

	memset(l, 0, sizeof(*l));
	l->buf = slurp(path);
	l->t = now_s();
	for (line = strtok_r(l->buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			if (!l->nname)
				l->nname = split(line + 1, l->name, MAX_FIELDS);
			continue;
		}
		if (l->nrings == cap) {
			cap = cap ? 2 * cap : 16;
			l->rings = realloc(l->rings, cap * sizeof(*l->rings));
			if (!l->rings) {
				fprintf(stderr, "snstat: out of memory\n");
				exit(2);
			}
		}
		l->rings[l->nrings].nval = split(line, l->rings[l->nrings].val,
						 MAX_FIELDS);
		if (l->rings[l->nrings].nval)
			l->nrings++;
	}
	if (!l->nname) {
		fprintf(stderr, "snstat: %s has no header line\n", path);
		exit(2);
	}
}

static void free_listing(struct listing *l)
{
	free(l->buf);
	free(l->rings);
}

static int col_of(const struct listing *l, const char *name)
{
	unsigned int i;

	for (i = 0; i < l->nname; i++)
		if (!strcmp(l->name[i], name))
			return (int)i;
	return -1;
}

static const char *field(const struct listing *l, const struct ring *r,
			 int f)
{
	int c = col_of(l, known[f]);

	return c >= 0 && (unsigned int)c < r->nval ? r->val[c] : NULL;
}

static int num(const char *s, long long *v)
{
	char *end;

	if (!s || !*s)
		return 0;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return !*end && !errno;
}

static long long numf(const struct listing *l, const struct ring *r, int f)
{
	long long v;

	return num(field(l, r, f), &v) ? v : -1;
}

/* How many bits a bitmap field (0x...) has set; -1 when not listed. */
static int bitsf(const struct listing *l, const struct ring *r, int f)
{
	const char *s = field(l, r, f);
	unsigned long long v;
	char *end;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	return *end || errno ? -1 : __builtin_popcountll(v);
}

/* The same ring in an earlier listing. */
static const struct ring *find(const struct listing *l, const char *id)
{
	size_t i;

	for (i = 0; l && id && i < l->nrings; i++) {
		const char *o = field(l, &l->rings[i], F_ID);

		if (o && !strcmp(o, id))
			return &l->rings[i];
	}
	return NULL;
}

/* Messages per second of counter @f between @old and @cur; < 0: unknown. */
static double rate(const struct listing *prev, const struct listing *cur,
		   const struct ring *r, int f)
{
	const struct ring *o = find(prev, field(cur, r, F_ID));
	long long a, b;

	if (!o || cur->t <= prev->t)
		return -1;
	a = numf(prev, o, f);
	b = numf(cur, r, f);
	if (a < 0 || b < 0 || b < a)
		return -1;
	return (double)(b - a) / (cur->t - prev->t);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(const struct listing *prev, const struct listing *cur,
		       double wall)
{
	size_t i;
	unsigned int c;

	for (i = 0; i < cur->nrings; i++) {
		const struct ring *r = &cur->rings[i];
		long long lanes = numf(cur, r, F_LANES);
		long long slots = numf(cur, r, F_SLOTS);
		double sr = rate(prev, cur, r, F_SENT);
		double rr = rate(prev, cur, r, F_RECEIVED);
		long long v;

		printf("{\"time\":%.3f", wall);
		for (c = 0; c < cur->nname && c < r->nval; c++) {
			printf(",");
			json_str(cur->name[c]);
			printf(":");
			if (num(r->val[c], &v))
				printf("%lld", v);
			else
				json_str(r->val[c]);
		}
		if (lanes >= 0 && slots >= 0)
			printf(",\"capacity\":%lld", lanes * slots);
		if (sr >= 0)
			printf(",\"sent_per_sec\":%.1f", sr);
		if (rr >= 0)
			printf(",\"received_per_sec\":%.1f", rr);
		printf("}\n");
	}
	fflush(stdout);
}

static void human(double v, char *out, size_t n)
{
	if (v < 0)
		snprintf(out, n, "-");
	else if (v >= 1e9)
		snprintf(out, n, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(out, n, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, n, "%.1fk", v / 1e3);
	else
		snprintf(out, n, "%.0f", v);
}

static const char *orbar(const char *s)
{
	return s ? s : "-";
}

static void print_table(const struct listing *prev, const struct listing *cur,
			double interval)
{
	size_t i;

	printf("%zu ring%s (%s); rates over %.1f s\n", cur->nrings,
	       cur->nrings == 1 ? "" : "s", path, interval);
	printf("%8s %-4s %7s %5s %7s %6s %7s %6s %8s %8s %5s %4s %8s %9s %6s %-5s\n",
	       "ID", "TYPE", "PID", "LANES", "CAP", "SLOT", "DEPTH", "FILL",
	       "SENT/s", "RECV/s", "SLEEP", "HOME", "KICKS", "LIVE/DEAD",
	       "LOST", "STATE");
	for (i = 0; i < cur->nrings; i++) {
		const struct ring *r = &cur->rings[i];
		long long lanes = numf(cur, r, F_LANES);
		long long slots = numf(cur, r, F_SLOTS);
		long long depth = numf(cur, r, F_DEPTH);
		long long rl = numf(cur, r, F_RESERVED_LOST);
		long long cl = numf(cur, r, F_CLAIMS_LOST);
		int live = bitsf(cur, r, F_LANES_LIVE);
		int dead = bitsf(cur, r, F_LANES_DEAD);
		char cap[24], fill[24], sr[16], rr[16], peers[24], lost[16];
		const char *state = "-";

#define S(f) orbar(field(cur, r, f))
		if (lanes >= 0 && slots >= 0)
			snprintf(cap, sizeof(cap), "%lld", lanes * slots);
		else
			snprintf(cap, sizeof(cap), "-");
		if (depth >= 0 && lanes > 0 && slots > 0)
			snprintf(fill, sizeof(fill), "%.1f%%",
				 100.0 * (double)depth / (double)(lanes * slots));
		else
			snprintf(fill, sizeof(fill), "-");
		human(rate(prev, cur, r, F_SENT), sr, sizeof(sr));
		human(rate(prev, cur, r, F_RECEIVED), rr, sizeof(rr));
		/* dead peers: producer lanes live and dead, messages lost */
		if (live >= 0 && dead >= 0)
			snprintf(peers, sizeof(peers), "%d/%d", live, dead);
		else
			snprintf(peers, sizeof(peers), "-");
		human(rl >= 0 && cl >= 0 ? (double)(rl + cl) : -1, lost,
		      sizeof(lost));
		if (numf(cur, r, F_ENDED) > 0)
			state = "ended";
		else if (numf(cur, r, F_ORPHANED) > 0)
			state = "orphan";
		printf("%8s %-4s %7s %5s %7s %6s %7s %6s %8s %8s %5s %4s %8s %9s %6s %-5s\n",
		       S(F_ID), S(F_TYPE), S(F_PID), S(F_LANES), cap,
		       S(F_SLOT_SIZE), S(F_DEPTH), fill, sr, rr,
		       S(F_SLEEPERS), S(F_HOME_CPU), S(F_KICKS), peers, lost,
		       state);
#undef S
	}
	fflush(stdout);
}

static void usage(int st)
{
	if (st) {
		fprintf(stderr, "usage: snstat [-w SECONDS] [-n COUNT] [--json] [--file PATH]; snstat --help says more\n");
		exit(st);
	}
	printf("usage: snstat [-w SECONDS] [-n COUNT] [--json] [--file PATH]\n"
	       "lists every sn ring from %s: id, type, owner pid, capacity,\n"
	       "slot size, depth, send/receive rates, sleepers, home CPU, kicks,\n"
	       "producer lanes live/dead, messages lost to dead peers, and\n"
	       "whether the stream ended (no producer) or has no consumer\n"
	       "options (default):\n"
	       "  -w, --watch SECONDS  refresh every SECONDS like top, rates per interval\n"
	       "                       (one listing, rates measured over 0.2 s)\n"
	       "  -n, --count COUNT    with -w: stop after COUNT refreshes (never)\n"
	       "  -j, --json           one JSON object per ring per line (a table)\n"
	       "  -f, --file PATH      read PATH instead (%s)\n"
	       "  --version            prints snstat %s\n"
	       "  -h, --help           this text\n",
	       SNSTAT_PROC, SNSTAT_PROC, SN_VERSION);
	exit(st);
}

/* A bad value for an option: says what was wrong, exits 2. */
static void bad_value(const char *what, const char *val, const char *want)
{
	fprintf(stderr, "snstat: %s %s: not %s\n", what, val, want);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", 0, 0, 'j' }, { "watch", 1, 0, 'w' },
		{ "count", 1, 0, 'n' }, { "file", 1, 0, 'f' },
		{ "help", 0, 0, 'h' }, { "version", 0, 0, 'V' },
		{ 0, 0, 0, 0 }
	};
	struct listing prev, cur;
	double interval = 0.2, watch = 0;
	long count = -1, i;
	int c, json = 0;
	char *end;

	while ((c = getopt_long(argc, argv, "jw:n:f:h", lo, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'w':
			watch = strtod(optarg, &end);
			if (end == optarg || *end || !(watch > 0 && watch <= 86400))
				bad_value("-w", optarg,
					  "a number of seconds above 0, at most 86400");
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (end == optarg || *end || count < 1)
				bad_value("-n", optarg, "a whole number above 0");
			break;
		case 'f': path = optarg; break;
		case 'h': usage(0); break;
		case 'V':
			printf("snstat %s\n", SN_VERSION);
			return 0;
		default: usage(2);
		}
	}
	if (optind < argc)
		usage(2);
	if (watch > 0)
		interval = watch;
	read_listing(&prev);
	for (i = 0; count < 0 || i < (count > 0 ? count : 1); i++) {
		struct timespec d = {
			(time_t)interval,
			(long)((interval - (double)(time_t)interval) * 1e9)
		};

		nanosleep(&d, NULL);
		read_listing(&cur);
		if (json) {
			print_json(&prev, &cur, (double)time(NULL));
		} else {
			if (watch > 0 && isatty(1))
				printf("\033[H\033[2J");
			print_table(&prev, &cur, cur.t - prev.t);
		}
		free_listing(&prev);
		prev = cur;
		if (!watch)
			break;
	}
	free_listing(&prev);
	return 0;
}
