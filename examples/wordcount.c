// SPDX-License-Identifier: MIT
/*
 * wordcount: counts the words of a text file with a libsn worker pool.
 *
 * The main thread reads the file and submits every word (lowercased
 * letters and digits, at most 47 bytes) keyed by its hash, so each word
 * always reaches the same worker (as a message of its own length: the
 * pool carries records, max_msg_size); each worker counts its words in a table
 * of its own (state_size: the pool gives every worker its own zeroed
 * state, no locks, nothing shared). After shutdown main collects each
 * worker's table with sn_pool_worker_state(), merges them (the workers'
 * words are disjoint) and prints the most frequent.
 *
 *   wordcount [-w WORKERS] [-n TOP] FILE
 *
 * Output: TOP lines "COUNT WORD" (most frequent first, ties by word), then
 * "total N words, M distinct".
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sn/pool.h>

#define WORD_MAX 47

struct entry {
	char word[WORD_MAX + 1];
	unsigned long count;
};

/* One worker's state: an open-addressing hash table. */
struct table {
	struct entry *e;
	size_t size, used;
};

static __u64 hash_word(const char *w, size_t len)
{
	__u64 h = 1469598103934665603ULL;	/* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)w[i]) * 1099511628211ULL;
	return h;
}

static int table_add(struct table *t, const char *w, size_t len, __u64 h)
{
	size_t i;

	if (2 * (t->used + 1) > t->size) {
		struct table big = { .size = t->size ? 2 * t->size : 1024 };

		big.e = calloc(big.size, sizeof(*big.e));
		if (!big.e)
			return -ENOMEM;
		for (i = 0; i < t->size; i++)
			if (t->e[i].count) {
				size_t l = strlen(t->e[i].word);
				size_t j = hash_word(t->e[i].word, l) &
					   (big.size - 1);

				while (big.e[j].count)
					j = (j + 1) & (big.size - 1);
				big.e[j] = t->e[i];
			}
		big.used = t->used;
		free(t->e);
		*t = big;
	}
	for (i = h & (t->size - 1); t->e[i].count; i = (i + 1) & (t->size - 1))
		if (!strncmp(t->e[i].word, w, len) && !t->e[i].word[len]) {
			t->e[i].count++;
			return 0;
		}
	memcpy(t->e[i].word, w, len);
	t->e[i].word[len] = 0;
	t->e[i].count = 1;
	t->used++;
	return 0;
}

static int wc_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	unsigned int i;

	(void)w;
	for (i = 0; i < n; i++)
		if (table_add(state, env[i].payload, env[i].len, env[i].key))
			return -ENOMEM;
	return 0;
}

static int by_count(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->word, y->word);
}

int main(int argc, char **argv)
{
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_submitter *sub;
	struct sn_pool *pool;
	unsigned long top = 10, total = 0, distinct = 0, i;
	unsigned int workers = 0, k;
	struct entry *all;
	char word[WORD_MAX + 1];
	size_t len = 0;
	FILE *f;
	int c, opt, ret;

	while ((opt = getopt(argc, argv, "w:n:")) != -1) {
		if (opt == 'w')
			workers = (unsigned int)strtoul(optarg, NULL, 10);
		else if (opt == 'n')
			top = strtoul(optarg, NULL, 10);
		else
			goto usage;
	}
	if (optind != argc - 1 || workers > 128)
		goto usage;
	f = fopen(argv[optind], "r");
	if (!f) {
		perror(argv[optind]);
		return 1;
	}

	sn_pool_config_init(&cfg);
	cfg.workers = workers;			/* 0: one per online CPU */
	/* most words are short: slots of 8 payload bytes (32 bytes each),
	 * longer words as records of up to 3 slots (pool.h "Message
	 * sizes"), instead of 96-byte slots for every word */
	cfg.msg_size = 8;
	cfg.max_msg_size = WORD_MAX;
	cfg.block_timeout_ns = SN_WAIT_FOREVER;	/* wait for room, forever */
	cfg.partitioner.kind = SN_PART_JUMP;
	cfg.state_size = sizeof(struct table);	/* each worker's own table */
	cfg.handle = wc_handle;
	ret = sn_pool_create(&pool, &cfg);
	if (!ret)
		ret = sn_submitter_open(pool, &sub);
	if (ret) {
		fprintf(stderr, "wordcount: %s\n", strerror(-ret));
		return 1;
	}
	do {
		c = getc(f);
		if (c != EOF && isalnum(c)) {
			if (len < WORD_MAX)
				word[len++] = (char)tolower(c);
			continue;
		}
		if (!len)
			continue;
		ret = sn_submit(sub, hash_word(word, len), word, (__u32)len);
		if (ret) {
			fprintf(stderr, "wordcount: submit: %s\n",
				strerror(-ret));
			return 1;
		}
		len = 0;
	} while (c != EOF);
	fclose(f);
	sn_submitter_close(sub);
	sn_pool_shutdown(pool);		/* drains every word, runs fini */
	sn_pool_stats(pool, &st);

	for (k = 0; k < sn_pool_workers(pool); k++)
		distinct += ((struct table *)sn_pool_worker_state(pool, k))->used;
	all = calloc(distinct + 1, sizeof(*all));
	if (!all)
		return 1;
	distinct = 0;
	for (k = 0; k < sn_pool_workers(pool); k++) {
		struct table *t = sn_pool_worker_state(pool, k);

		for (i = 0; i < t->size; i++)
			if (t->e[i].count) {
				all[distinct++] = t->e[i];
				total += t->e[i].count;
			}
		free(t->e);	/* the table itself is the pool's */
	}
	sn_pool_destroy(pool);
	qsort(all, distinct, sizeof(*all), by_count);
	for (i = 0; i < top && i < distinct; i++)
		printf("%lu %s\n", all[i].count, all[i].word);
	printf("total %lu words, %lu distinct\n", total, distinct);
	free(all);
	if (total != st.submitted || st.handled != st.submitted) {
		fprintf(stderr, "wordcount: counts do not add up\n");
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: wordcount [-w WORKERS] [-n TOP] FILE\n");
	return 2;
}
