/* seq2seq data: the English->Korean generator's grammar, the TSV reader's
 * errors, vocabularies and BLEU. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bleu.h"
#include "corpus_enko.h"
#include "pairs.h"

/* ------------------------------------------------------------------ helpers */

#define MAX_TOK 64

typedef struct toks {
    int n;
    char w[MAX_TOK][64];
} toks;

static void split(const char *s, toks *t)
{
    t->n = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ') p++;
        const char *b = p;
        while (*p && *p != ' ') p++;
        if (p > b) {
            cr_assert_lt(t->n, MAX_TOK);
            size_t len = (size_t)(p - b);
            cr_assert_lt(len, 64);
            memcpy(t->w[t->n], b, len);
            t->w[t->n][len] = '\0';
            t->n++;
        }
    }
}

/* The test's own batchim rule, written from the Unicode layout of
 * precomposed syllables: last code point, (cp - 0xAC00) % 28 != 0. */
static int ends_in_consonant(const char *w)
{
    size_t n = strlen(w);
    cr_assert_geq(n, 3);
    const unsigned char *p = (const unsigned char *)w + n - 3;
    cr_assert_eq(p[0] & 0xF0, 0xE0, "'%s' does not end in a 3-byte character", w);
    unsigned cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    cr_assert(cp >= 0xAC00 && cp <= 0xD7A3, "'%s' does not end in a Hangul syllable", w);
    return (cp - 0xAC00) % 28 != 0;
}

static int index_of(const toks *t, const char *w, int from)
{
    for (int i = from; i < t->n; i++)
        if (strcmp(t->w[i], w) == 0) return i;
    return -1;
}

/* Whether s contains phrase as whole space-separated words. */
static int has_phrase(const char *s, const char *phrase)
{
    size_t n = strlen(phrase);
    for (const char *p = strstr(s, phrase); p; p = strstr(p + 1, phrase))
        if ((p == s || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

static int ends_with_phrase(const char *s, const char *phrase)
{
    size_t n = strlen(s), k = strlen(phrase);
    return n >= k && strcmp(s + n - k, phrase) == 0 && (n == k || s[n - k - 1] == ' ');
}

typedef struct corpus {
    s2s_pairs train, test;
    enko_choice *ctrain, *ctest;
    enko_options opt;
} corpus;

static void make_corpus(corpus *c, uint64_t seed, int n_train, int n_test)
{
    char err[256];
    enko_options_default(&c->opt);
    c->opt.seed = seed;
    c->opt.n_train = n_train;
    c->opt.n_test = n_test;
    s2s_pairs_init(&c->train);
    s2s_pairs_init(&c->test);
    int rc = enko_generate(&c->opt, &c->train, &c->test, &c->ctrain, &c->ctest, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(c->train.n, (size_t)n_train);
    cr_assert_eq(c->test.n, (size_t)n_test);
}

static void free_corpus(corpus *c)
{
    s2s_pairs_free(&c->train);
    s2s_pairs_free(&c->test);
    free(c->ctrain);
    free(c->ctest);
}

/* The verb of an English sentence, read from the English words alone, and the
 * tense its form says. */
static int english_verb(const char *en, int *tense)
{
    const enko_lexicon *L = enko_lexicon_get();
    int found = -1;
    for (int v = 0; v < L->n_verbs; v++) {
        char fut[64];
        snprintf(fut, sizeof fut, "will %s", L->verbs[v].en_base);
        int t = has_phrase(en, fut) ? ENKO_FUTURE
                : has_phrase(en, L->verbs[v].en_past) ? ENKO_PAST
                : (has_phrase(en, L->verbs[v].en_base) || has_phrase(en, L->verbs[v].en_3sg))
                    ? ENKO_PRESENT
                    : -1;
        if (t < 0) continue;
        cr_assert_eq(found, -1, "two verbs in '%s'", en);
        found = v;
        *tense = t;
    }
    cr_assert_geq(found, 0, "no verb in '%s'", en);
    return found;
}

/* ------------------------------------------------------------------ grammar */

Test(corpus, lexicon_is_big_enough)
{
    const enko_lexicon *L = enko_lexicon_get();
    cr_assert_geq(L->n_subjects, 8);
    cr_assert_geq(L->n_objects, 30);
    cr_assert_geq(L->n_verbs, 15);
    int cons = 0;
    for (int i = 0; i < L->n_objects; i++) cons += ends_in_consonant(L->objects[i].ko);
    cr_assert(cons > 5 && cons < L->n_objects - 5, "objects need both final sounds");
}

Test(corpus, seed_pair_is_first_test_pair)
{
    corpus c;
    make_corpus(&c, 1, 100, 50);
    cr_assert_str_eq(c.test.src[0], "I study deeplearning");
    cr_assert_str_eq(c.test.tgt[0], "나 는 딥러닝 을 공부 한다");
    for (size_t i = 0; i < c.train.n; i++)
        cr_assert(!(c.ctrain[i].subject == 0 && c.ctrain[i].verb == 0 && c.ctrain[i].object == 0),
                  "I/study/deeplearning must not be trained on");
    free_corpus(&c);
}

Test(corpus, batchim_rule)
{
    cr_assert_eq(enko_has_batchim("책"), 1);
    cr_assert_eq(enko_has_batchim("딥러닝"), 1);
    cr_assert_eq(enko_has_batchim("꽃"), 1);
    cr_assert_eq(enko_has_batchim("사과"), 0);
    cr_assert_eq(enko_has_batchim("내 친구"), 0);
    cr_assert_eq(enko_has_batchim("선생님"), 1);
    cr_assert_eq(enko_has_batchim("abc"), 0);
    cr_assert_eq(enko_has_batchim(""), 0);
}

/* Every particle agrees with the final sound of the noun before it. */
Test(corpus, particles_follow_final_consonant)
{
    corpus c;
    make_corpus(&c, 7, 3000, 300);
    const char *cons[3] = {"은", "이", "을"}, *vow[3] = {"는", "가", "를"};
    long seen[2] = {0, 0};
    for (int side = 0; side < 2; side++) {
        s2s_pairs *p = side ? &c.test : &c.train;
        for (size_t i = 0; i < p->n; i++) {
            toks t;
            split(p->tgt[i], &t);
            for (int k = 1; k < t.n; k++)
                for (int j = 0; j < 3; j++) {
                    int is_c = strcmp(t.w[k], cons[j]) == 0, is_v = strcmp(t.w[k], vow[j]) == 0;
                    if (!is_c && !is_v) continue;
                    int want_c = ends_in_consonant(t.w[k - 1]);
                    cr_assert_eq(is_c, want_c, "'%s': particle %s after %s", p->tgt[i], t.w[k],
                                 t.w[k - 1]);
                    seen[want_c]++;
                }
        }
    }
    cr_assert(seen[0] > 1000 && seen[1] > 1000);
    free_corpus(&c);
}

/* Subject + topic particle first, then time, place, object + particle, verb. */
Test(corpus, korean_order_is_subject_object_verb)
{
    corpus c;
    make_corpus(&c, 3, 3000, 200);
    const enko_lexicon *L = enko_lexicon_get();
    for (size_t i = 0; i < c.train.n; i++) {
        const enko_choice *ch = &c.ctrain[i];
        const char *en = c.train.src[i], *ko = c.train.tgt[i];
        toks e, k;
        split(en, &e);
        split(ko, &k);
        /* English: S V O (the object follows the verb) */
        int tense;
        english_verb(en, &tense);
        const char *ko_verb = L->verbs[ch->verb].ko[tense];
        cr_assert(ends_with_phrase(ko, ko_verb), "'%s' should end with '%s'", ko, ko_verb);
        toks subj, obj;
        split(L->subjects[ch->subject].ko, &subj);
        split(L->objects[ch->object].ko, &obj);
        for (int j = 0; j < subj.n; j++) cr_assert_str_eq(k.w[j], subj.w[j], "%s", ko);
        const char *topic = k.w[subj.n];
        cr_assert(strcmp(topic, "은") == 0 || strcmp(topic, "는") == 0, "%s", ko);
        int nverb;
        toks vt;
        split(ko_verb, &vt);
        nverb = vt.n;
        /* object and its particle come right before the verb */
        cr_assert_str_eq(k.w[k.n - nverb - 2], obj.w[0], "%s", ko);
        toks se;
        split(L->subjects[ch->subject].en, &se);
        const enko_verb *vb = &L->verbs[ch->verb];
        const char *vform = tense == ENKO_FUTURE ? "will" : tense == ENKO_PAST ? vb->en_past
                            : L->subjects[ch->subject].third_singular ? vb->en_3sg : vb->en_base;
        int es = index_of(&e, se.w[se.n - 1], 0), ev = index_of(&e, vform, 0);
        int eo = index_of(&e, L->objects[ch->object].en, 0);
        cr_assert(es >= 0 && es < ev && ev < eo, "English '%s' is not S V O", en);
    }
    free_corpus(&c);
}

/* The English verb form alone decides the Korean ending; 이/가 marks the
 * object of need/have, 을/를 the others. */
Test(corpus, tense_endings_follow_english_verb_form)
{
    corpus c;
    make_corpus(&c, 11, 3000, 300);
    const enko_lexicon *L = enko_lexicon_get();
    int per_tense[3] = {0, 0, 0};
    for (size_t i = 0; i < c.train.n; i++) {
        int tense, v = english_verb(c.train.src[i], &tense);
        per_tense[tense]++;
        cr_assert(ends_with_phrase(c.train.tgt[i], L->verbs[v].ko[tense]), "%s -> %s",
                  c.train.src[i], c.train.tgt[i]);
        cr_assert_eq(ends_with_phrase(c.train.tgt[i], "것이다"), tense == ENKO_FUTURE);
        toks k, vt;
        split(c.train.tgt[i], &k);
        split(L->verbs[v].ko[tense], &vt);
        const char *particle = k.w[k.n - vt.n - 1];
        int subj_marked = strcmp(particle, "이") == 0 || strcmp(particle, "가") == 0;
        int obj_marked = strcmp(particle, "을") == 0 || strcmp(particle, "를") == 0;
        cr_assert(subj_marked || obj_marked);
        cr_assert_eq(subj_marked, L->verbs[v].object_particle == ENKO_PARTICLE_SUBJECT, "%s",
                     c.train.tgt[i]);
    }
    for (int t = 0; t < 3; t++) cr_assert_gt(per_tense[t], 800);
    cr_assert_str_eq(L->verbs[0].ko[ENKO_PRESENT], "공부 한다");
    cr_assert_str_eq(L->verbs[0].ko[ENKO_PAST], "공부 했다");
    cr_assert_str_eq(L->verbs[0].ko[ENKO_FUTURE], "공부 할 것이다");
    free_corpus(&c);
}

/* Time phrases agree with the tense and, with place phrases, stand between
 * the topic particle and the object in Korean. */
Test(corpus, time_and_place_agree_and_move)
{
    corpus c;
    make_corpus(&c, 5, 3000, 300);
    const enko_lexicon *L = enko_lexicon_get();
    int with_time = 0, with_place = 0, time_first = 0, time_last = 0;
    for (size_t i = 0; i < c.train.n; i++) {
        const char *en = c.train.src[i], *ko = c.train.tgt[i];
        int tense;
        english_verb(en, &tense);
        toks k, e;
        split(ko, &k);
        split(en, &e);
        int topic = index_of(&k, "는", 0) >= 0 ? index_of(&k, "는", 0) : index_of(&k, "은", 0);
        cr_assert_geq(topic, 1);
        int pos = topic + 1;
        for (int ti = 0; ti < L->n_times; ti++) {
            if (!has_phrase(en, L->times[ti].en)) continue;
            with_time++;
            cr_assert_eq(L->times[ti].tense, tense, "'%s': time disagrees with tense", en);
            toks kt;
            split(L->times[ti].ko, &kt);
            for (int j = 0; j < kt.n; j++) cr_assert_str_eq(k.w[pos + j], kt.w[j], "%s", ko);
            pos += kt.n;
            toks et;
            split(L->times[ti].en, &et);
            if (strcmp(e.w[0], et.w[0]) == 0) time_first++;
            else if (strcmp(e.w[e.n - 1], et.w[et.n - 1]) == 0) time_last++;
            else cr_assert_fail("'%s': time phrase neither first nor last", en);
        }
        for (int pl = 0; pl < L->n_places; pl++) {
            if (!has_phrase(en, L->places[pl].en)) continue;
            with_place++;
            toks kp;
            split(L->places[pl].ko, &kp);
            cr_assert_str_eq(k.w[pos], kp.w[0], "%s", ko);
            cr_assert_str_eq(k.w[pos + 1], "에서", "%s", ko);
            pos += kp.n;
        }
        /* next comes the object */
        cr_assert_str_eq(k.w[pos], L->objects[c.ctrain[i].object].ko, "%s", ko);
    }
    cr_assert_gt(with_time, 1000);
    cr_assert_gt(with_place, 1000);
    cr_assert_gt(time_first, 300);
    cr_assert_gt(time_last, 300);
    free_corpus(&c);
}

Test(corpus, invalid_choices_are_refused)
{
    char en[256], ko[256];
    const enko_lexicon *L = enko_lexicon_get();
    int drink = -1, bread = -1, yesterday = -1;
    for (int v = 0; v < L->n_verbs; v++)
        if (strcmp(L->verbs[v].en_base, "drink") == 0) drink = v;
    for (int o = 0; o < L->n_objects; o++)
        if (strcmp(L->objects[o].en, "bread") == 0) bread = o;
    for (int t = 0; t < L->n_times; t++)
        if (strcmp(L->times[t].en, "yesterday") == 0) yesterday = t;
    enko_choice c = {0, drink, bread, ENKO_PRESENT, -1, -1, 0};
    cr_assert_eq(enko_render(&c, en, sizeof en, ko, sizeof ko), -1, "drink bread");
    enko_choice d = {0, 0, 0, ENKO_FUTURE, yesterday, -1, 0};
    cr_assert_eq(enko_render(&d, en, sizeof en, ko, sizeof ko), -1, "will ... yesterday");
    d.tense = ENKO_PAST;
    d.place = 0;
    cr_assert_eq(enko_render(&d, en, sizeof en, ko, sizeof ko), 0);
    cr_assert_str_eq(en, "I studied deeplearning in the library yesterday");
    cr_assert_str_eq(ko, "나 는 어제 도서관 에서 딥러닝 을 공부 했다");
    cr_assert_eq(enko_render(&d, en, 10, ko, sizeof ko), -1, "small buffer");
}

/* No subject-verb-object triple of the test set occurs in training, and
 * every word of the test set occurs in training. */
Test(corpus, held_out_triples_are_disjoint)
{
    corpus c;
    make_corpus(&c, 1, 20000, 1000);
    const enko_lexicon *L = enko_lexicon_get();
    int ns = L->n_subjects, nv = L->n_verbs, no = L->n_objects;
    char *in_train = calloc((size_t)(ns * nv * no), 1);
    for (size_t i = 0; i < c.train.n; i++) {
        const enko_choice *x = &c.ctrain[i];
        in_train[(x->subject * nv + x->verb) * no + x->object] = 1;
    }
    for (size_t i = 0; i < c.test.n; i++) {
        const enko_choice *x = &c.ctest[i];
        cr_assert_eq(in_train[(x->subject * nv + x->verb) * no + x->object], 0,
                     "test pair '%s' repeats a training triple", c.test.src[i]);
    }
    /* and the triple can be read back from the English words */
    for (size_t i = 0; i < c.test.n; i++) {
        int tense, v = english_verb(c.test.src[i], &tense);
        cr_assert_eq(v, c.ctest[i].verb);
        cr_assert(has_phrase(c.test.src[i], L->objects[c.ctest[i].object].en));
    }
    s2s_vocab vs, vt;
    cr_assert_eq(s2s_vocab_build(&vs, c.train.src, c.train.n, 1), 0);
    cr_assert_eq(s2s_vocab_build(&vt, c.train.tgt, c.train.n, 1), 0);
    int ids[MAX_TOK];
    for (size_t i = 0; i < c.test.n; i++) {
        int n = s2s_vocab_encode(&vs, c.test.src[i], ids, MAX_TOK, -1);
        for (int j = 0; j < n; j++) cr_assert_geq(ids[j], 0, "OOV in %s", c.test.src[i]);
        n = s2s_vocab_encode(&vt, c.test.tgt[i], ids, MAX_TOK, -1);
        for (int j = 0; j < n; j++) cr_assert_geq(ids[j], 0, "OOV in %s", c.test.tgt[i]);
    }
    /* test pairs are distinct */
    for (size_t i = 0; i < c.test.n; i++)
        for (size_t j = i + 1; j < c.test.n; j++)
            cr_assert(strcmp(c.test.src[i], c.test.src[j]) != 0, "duplicate %s", c.test.src[i]);
    s2s_vocab_free(&vs);
    s2s_vocab_free(&vt);
    free(in_train);
    free_corpus(&c);
}

Test(corpus, deterministic_per_seed)
{
    corpus a, b, d;
    make_corpus(&a, 42, 500, 100);
    make_corpus(&b, 42, 500, 100);
    make_corpus(&d, 43, 500, 100);
    int differ = 0;
    for (size_t i = 0; i < a.train.n; i++) {
        cr_assert_str_eq(a.train.src[i], b.train.src[i]);
        cr_assert_str_eq(a.train.tgt[i], b.train.tgt[i]);
        differ += strcmp(a.train.src[i], d.train.src[i]) != 0;
    }
    for (size_t i = 0; i < a.test.n; i++) cr_assert_str_eq(a.test.tgt[i], b.test.tgt[i]);
    cr_assert_gt(differ, 400);
    free_corpus(&a);
    free_corpus(&b);
    free_corpus(&d);
}

/* ------------------------------------------------------------------ TSV reader */

static char tmp_path[256];

static const char *write_tmp(const char *bytes, size_t n)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/s2s_test_%ld.tsv", (long)getpid());
    FILE *f = fopen(tmp_path, "wb");
    cr_assert_not_null(f);
    fwrite(bytes, 1, n, f);
    fclose(f);
    return tmp_path;
}

/* Reads text as a file; returns rc, err filled. */
static int read_text(s2s_pairs *p, const char *text, const s2s_read_options *o, char *err)
{
    const char *path = write_tmp(text, strlen(text));
    s2s_pairs_init(p);
    int rc = s2s_pairs_read_tsv(p, path, o, err, 256);
    remove(path);
    return rc;
}

static void expect_error(const char *text, const char *where, const char *what)
{
    s2s_read_options o;
    s2s_read_options_default(&o);
    s2s_pairs p;
    char err[256] = "", want[300];
    cr_assert_eq(read_text(&p, text, &o, err), -1, "accepted: %s", text);
    snprintf(want, sizeof want, "%s%s", tmp_path, where);
    cr_assert(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
    cr_assert(strstr(err, what) != NULL, "message '%s' lacks '%s'", err, what);
    s2s_pairs_free(&p);
}

Test(tsv, reads_real_file_layout)
{
    s2s_read_options o;
    s2s_read_options_default(&o);
    s2s_pairs p;
    char err[256];
    const char *text = "\xEF\xBB\xBFGo.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org\r\n"
                       "\r\n"
                       "   \n"
                       "Hello, world! I don't know.\tBonjour, le monde ! Je ne sais pas.\n"
                       "It's 3.5 km.\tÇa fait 3,5 km.\n"
                       "I study deeplearning\t나 는 딥러닝 을 공부 한다"; /* no final newline */
    cr_assert_eq(read_text(&p, text, &o, err), 0, "%s", err);
    cr_assert_eq(p.n, 4);
    cr_assert_str_eq(p.src[0], "Go .");
    cr_assert_str_eq(p.tgt[0], "Va !");
    cr_assert_str_eq(p.src[1], "Hello , world ! I don't know .");
    cr_assert_str_eq(p.tgt[1], "Bonjour , le monde ! Je ne sais pas .");
    cr_assert_str_eq(p.src[2], "It's 3.5 km .");
    cr_assert_str_eq(p.tgt[2], "Ça fait 3,5 km .");
    cr_assert_str_eq(p.tgt[3], "나 는 딥러닝 을 공부 한다");
    cr_assert_eq(p.line[0], 1);
    cr_assert_eq(p.line[1], 4);
    cr_assert_eq(p.line[3], 6);
    s2s_pairs_free(&p);
}

Test(tsv, lowercase_option)
{
    s2s_read_options o;
    s2s_read_options_default(&o);
    o.tok.lowercase = 1;
    s2s_pairs p;
    char err[256];
    cr_assert_eq(read_text(&p, "ÉCOLE Straße, ПРИВЕТ «Ω»\tÀ BIENTÔT\n", &o, err), 0, "%s", err);
    cr_assert_str_eq(p.src[0], "école straße , привет « ω »");
    cr_assert_str_eq(p.tgt[0], "à bientôt");
    s2s_pairs_free(&p);
}

Test(tsv, missing_tab_names_line)
{
    expect_error("a\tb\n\nno tab here\nc\td\n", ":3:", "no TAB");
}

Test(tsv, invalid_utf8_names_line)
{
    expect_error("a\tb\nbad \xC3\x28 byte\tx\n", ":2:", "invalid UTF-8");
    expect_error("overlong \xC0\xAF\tx\n", ":1:", "invalid UTF-8");
    expect_error("a\tb\nc\td\nsurrogate \xED\xA0\x80\tx\n", ":3:", "invalid UTF-8");
}

Test(tsv, empty_side_names_line)
{
    expect_error("a\tb\nsource only\t\n", ":2:", "empty target");
    expect_error("a\tb\nc\td\n  \t target\n", ":3:", "empty source");
}

Test(tsv, missing_file_is_an_error)
{
    s2s_read_options o;
    s2s_read_options_default(&o);
    s2s_pairs p;
    s2s_pairs_init(&p);
    char err[256];
    cr_assert_eq(s2s_pairs_read_tsv(&p, "/nonexistent/x.tsv", &o, err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/x.tsv") != NULL, "%s", err);
}

Test(tsv, long_lines_are_skipped_and_counted)
{
    char text[4096] = "", word[16];
    size_t len = 0;
    for (int side = 0; side < 2; side++) { /* 60 tokens: kept */
        for (int i = 0; i < 60; i++) {
            snprintf(word, sizeof word, "%sw%d", i ? " " : "", i);
            len += (size_t)sprintf(text + len, "%s", word);
        }
        text[len++] = side ? '\n' : '\t';
    }
    len += (size_t)sprintf(text + len, "short\tline\n");
    for (int i = 0; i < 61; i++) len += (size_t)sprintf(text + len, "x%d ", i); /* 61: skipped */
    len += (size_t)sprintf(text + len, "\tok\n");
    text[len] = '\0';
    s2s_read_options o;
    s2s_read_options_default(&o);
    s2s_pairs p;
    char err[256];
    cr_assert_eq(read_text(&p, text, &o, err), 0, "%s", err);
    cr_assert_eq(p.n, 2);
    cr_assert_eq(p.skipped_long, 1);
    cr_assert_eq(s2s_count_tokens(p.src[0]), 60);
    s2s_pairs_free(&p);
}

/* n lines "wI xI\tyI zI" (I = 0..n-1); a malloc'd string. */
static char *numbered_pairs(int n)
{
    char *text = malloc((size_t)n * 48 + 1);
    size_t len = 0;
    cr_assert_not_null(text);
    for (int i = 0; i < n; i++) len += (size_t)sprintf(text + len, "w%d x%d\ty%d z%d\n", i, i, i, i);
    return text;
}

/* The memory the pairs hold is counted, and a file past max_bytes is
 * refused at the line whose pair would cross it, not read on until the
 * machine runs out (the kernel would kill the process, not refuse it). */
Test(tsv, pairs_past_max_bytes_are_refused_at_the_line_that_crosses_it)
{
    char *text = numbered_pairs(2000), err[256] = "";
    s2s_read_options o;
    s2s_read_options_default(&o);
    s2s_pairs all, part;
    cr_assert_eq(read_text(&all, text, &o, err), 0, "%s", err);
    size_t bytes = s2s_pairs_bytes(&all), strings = 0;
    for (size_t i = 0; i < all.n; i++) strings += strlen(all.src[i]) + strlen(all.tgt[i]) + 2;
    /* every string is a heap block: more than its bytes, less than 4x */
    cr_assert(bytes > strings + all.n * 2 * sizeof(char *) && bytes < 4 * strings + all.cap * 20,
              "%zu bytes for %zu of strings", bytes, strings);
    o.max_bytes = bytes; /* exactly what it takes: read whole */
    cr_assert_eq(read_text(&part, text, &o, err), 0, "%s", err);
    cr_assert_eq(part.n, 2000);
    s2s_pairs_free(&part);
    o.max_bytes = bytes / 3;
    o.max_bytes_why = "a third of it";
    cr_assert_eq(read_text(&part, text, &o, err), -1, "read past its limit");
    int line;
    char want[320];
    snprintf(want, sizeof want, "%s:%%d: holding the pairs read up to this line takes ", tmp_path);
    cr_assert_eq(sscanf(err, want, &line), 1, "%s", err);
    cr_assert(strstr(err, ", more than a third of it") != NULL, "%s", err);
    /* the lines before it fit; with it they would not */
    s2s_pairs_free(&part);
    s2s_pairs_init(&part);
    for (int i = 0; i < line - 1; i++)
        cr_assert_eq(s2s_pairs_add(&part, all.src[i], all.tgt[i], i + 1), 0);
    cr_assert_leq(s2s_pairs_bytes(&part), o.max_bytes);
    cr_assert_eq(s2s_pairs_add(&part, all.src[line - 1], all.tgt[line - 1], line), 0);
    cr_assert_gt(s2s_pairs_bytes(&part), o.max_bytes);
    s2s_pairs_free(&part);
    /* what another file's pairs hold counts: the limit is met at line 1 */
    o.max_bytes = bytes;
    o.bytes_held = bytes - 1;
    cr_assert_eq(read_text(&part, text, &o, err), -1, "read past its limit");
    snprintf(want, sizeof want, "%s:1: holding the pairs read up to this line takes ", tmp_path);
    cr_assert(strstr(err, want) != NULL, "%s", err);
    s2s_pairs_free(&part);
    s2s_pairs_free(&all);
    free(text);
}

Test(tsv, valid_frac_split)
{
    s2s_pairs p, v;
    s2s_pairs_init(&p);
    s2s_pairs_init(&v);
    for (int i = 0; i < 100; i++) {
        char s[16];
        snprintf(s, sizeof s, "s%d", i);
        cr_assert_eq(s2s_pairs_add(&p, s, "t", i + 1), 0);
    }
    cr_assert_eq(s2s_pairs_split(&p, &v, 0.2, 1), 0);
    cr_assert_eq(p.n, 80);
    cr_assert_eq(v.n, 20);
    for (size_t i = 0; i < v.n; i++)
        for (size_t j = 0; j < p.n; j++) cr_assert(strcmp(v.src[i], p.src[j]) != 0);
    s2s_pairs_free(&p);
    s2s_pairs_free(&v);
}

/* ------------------------------------------------------------------ vocabulary */

Test(vocab, specials_min_count_and_roundtrip)
{
    char *texts[] = {"a b b c", "b c d", "c <unk>"};
    s2s_vocab v;
    cr_assert_eq(s2s_vocab_build(&v, texts, 3, 2), 0);
    cr_assert_eq(v.n, 4 + 2); /* c:3, b:3 kept; a, d, <unk> not words */
    cr_assert_str_eq(v.words[S2S_PAD], "<pad>");
    cr_assert_str_eq(v.words[S2S_UNK], "<unk>");
    cr_assert_str_eq(v.words[S2S_BOS], "<bos>");
    cr_assert_str_eq(v.words[S2S_EOS], "<eos>");
    cr_assert_str_eq(v.words[4], "b"); /* equal counts: byte order */
    cr_assert_str_eq(v.words[5], "c");
    int ids[8];
    cr_assert_eq(s2s_vocab_encode(&v, "a b c zz", ids, 8, S2S_UNK), 4);
    cr_assert_eq(ids[0], S2S_UNK);
    cr_assert_eq(ids[1], 4);
    cr_assert_eq(ids[2], 5);
    cr_assert_eq(ids[3], S2S_UNK);
    /* special words in the text never become special ids */
    cr_assert_eq(s2s_vocab_encode(&v, "<pad> <bos> <eos> <unk> b", ids, 8, -1), 5);
    for (int i = 0; i < 3; i++) cr_assert_eq(ids[i], -1);
    cr_assert_eq(ids[3], S2S_UNK);
    cr_assert_eq(ids[4], 4);
    char *joined = s2s_vocab_join(&v);
    s2s_vocab w;
    cr_assert_eq(s2s_vocab_split(&w, joined), 0);
    cr_assert_eq(w.n, v.n);
    for (int i = 0; i < v.n; i++) cr_assert_str_eq(w.words[i], v.words[i]);
    cr_assert_eq(s2s_vocab_find(&w, "c", 1), 5);
    free(joined);
    s2s_vocab_free(&v);
    s2s_vocab_free(&w);
}

/* A model file's word list is not trusted: a word no text can give (empty,
 * or holding a space, tab or line break, which would also split an output
 * line) or a repeated one makes it no vocabulary; any other bytes are words. */
Test(vocab, a_word_no_text_gives_is_refused)
{
    const char *bad[] = {"a\n\nb", "a\nb c", "a\nb\tc", "a\nb\r", "\n", "a\na", "a\n<eos>"};
    s2s_vocab v;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(s2s_vocab_split(&v, bad[i]), 1, "word list %zu accepted", i);
    cr_assert_eq(s2s_vocab_split(&v, "a\nb\x01\n\xc3\xa4\n<bo"), 0);
    cr_assert_eq(v.n, S2S_N_SPECIAL + 4);
    cr_assert_eq(s2s_vocab_find(&v, "\xc3\xa4", 2), S2S_N_SPECIAL + 2);
    s2s_vocab_free(&v);
    cr_assert_eq(s2s_vocab_split(&v, ""), 0); /* no words beyond the specials */
    cr_assert_eq(v.n, S2S_N_SPECIAL);
    s2s_vocab_free(&v);
}

/* ------------------------------------------------------------------ BLEU */

Test(bleu, identical_is_100)
{
    int a[] = {5, 6, 7, 8, 9}, b[] = {1, 2, 3, 4};
    s2s_bleu s;
    s2s_bleu_init(&s);
    s2s_bleu_add(&s, a, 5, a, 5);
    s2s_bleu_add(&s, b, 4, b, 4);
    cr_assert_float_eq(s2s_bleu_score(&s), 100.0, 1e-9);
    cr_assert_float_eq(s2s_bleu_exact(&s), 1.0, 1e-12);
}

Test(bleu, zero_overlap_is_0)
{
    int h[] = {1, 2, 3, 4, 5}, r[] = {6, 7, 8, 9, 10};
    s2s_bleu s;
    s2s_bleu_init(&s);
    s2s_bleu_add(&s, h, 5, r, 5);
    cr_assert_float_eq(s2s_bleu_score(&s), 0.0, 1e-12);
    cr_assert_float_eq(s2s_bleu_exact(&s), 0.0, 1e-12);
}

Test(bleu, brevity_penalty)
{
    /* the hypothesis is the first half of the reference: every n-gram
     * matches, BP = exp(1 - 10/5) */
    int r[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    s2s_bleu s;
    s2s_bleu_init(&s);
    s2s_bleu_add(&s, r, 5, r, 10);
    cr_assert_float_eq(s2s_bleu_score(&s), 100.0 * exp(-1.0), 1e-9);
    cr_assert_float_eq(s2s_bleu_exact(&s), 0.0, 1e-12);
    /* a longer hypothesis has no penalty: precision only */
    s2s_bleu_init(&s);
    int h[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    s2s_bleu_add(&s, h, 12, r, 10);
    double p = (10.0 / 12) * (9.0 / 11) * (8.0 / 10) * (7.0 / 9);
    cr_assert_float_eq(s2s_bleu_score(&s), 100.0 * pow(p, 0.25), 1e-9);
}

Test(bleu, clipping_and_partial_matches)
{
    /* hyp 1 2 3 4 5 6, ref 1 2 3 4 7 6 8: p = 5/6, 3/5, 2/4, 1/3 */
    int h[] = {1, 2, 3, 4, 5, 6}, r[] = {1, 2, 3, 4, 7, 6, 8};
    s2s_bleu s;
    s2s_bleu_init(&s);
    s2s_bleu_add(&s, h, 6, r, 7);
    double want = 100.0 * exp(1.0 - 7.0 / 6.0) * pow(5.0 / 6 * 3.0 / 5 * 2.0 / 4 * 1.0 / 3, 0.25);
    cr_assert_float_eq(s2s_bleu_score(&s), want, 1e-9);
    /* "the the the the" against "the cat": unigram matches clip at 1 */
    int hh[] = {1, 1, 1, 1}, rr[] = {1, 2};
    s2s_bleu_init(&s);
    s2s_bleu_add(&s, hh, 4, rr, 2);
    cr_assert_eq(s.matches[0], 1);
    cr_assert_eq(s.totals[0], 4);
}

Test(bleu, corpus_level_sums_counts)
{
    /* the second sentence alone has no 4-gram, the corpus has one */
    int h1[] = {1, 2, 3, 4}, h2[] = {5, 6};
    s2s_bleu s;
    s2s_bleu_init(&s);
    s2s_bleu_add(&s, h1, 4, h1, 4);
    s2s_bleu_add(&s, h2, 2, h2, 2);
    double p = 1.0; /* all n-grams match: 6/6, 4/4, 2/2, 1/1 */
    cr_assert_float_eq(s2s_bleu_score(&s), 100.0 * p, 1e-9);
    cr_assert_eq(s.totals[3], 1);
    int ref_oov[] = {-1, 6};
    s2s_bleu_add(&s, h2, 2, ref_oov, 2); /* <unk>-free OOV reference never matches */
    cr_assert_float_eq(s2s_bleu_exact(&s), 2.0 / 3, 1e-12);
}
