/* Scores on text as people read it (issue 13): the 13a tokenizer, corpus
 * BLEU with sacreBLEU's 'exp' smoothing and without, and chrF, against
 * values computed independently by tests/seq2seq/score_refs.py (Python's re
 * for the 13a rules, NLTK's corpus_bleu, a chrF written from the paper), two
 * of which are published sacreBLEU figures. The hypothesis/reference sets
 * below are the SETS of that script, in the same order. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bleu.h"
#include "chrf.h"

/* ------------------------------------------------------------------ 13a */

/* {input, tokenized}: score_refs.py's TOK_CASES through its tok13a. */
static const char *const tok_cases[][2] = {
{"Hello, world!", "Hello , world !"},
{"It's 3.5 km.", "It's 3.5 km ."},
{"1,000.00 and 3,5", "1,000.00 and 3,5"},
{"a.b,c", "a . b , c"},
{"x..y", "x . . y"},
{"end.", "end ."},
{"2009-10 well-known -5", "2009 - 10 well-known -5"},
{"(a) [b] {c} <d> |e| ~f^ `g` _h_", "( a ) [ b ] { c } < d > | e | ~ f ^ ` g ` _ h _"},
{"$5 @home #tag 100% a&b *c+ d=e", "$ 5 @ home # tag 100 % a & b * c + d = e"},
{"a/b\\c", "a / b \\ c"},
{"Stra\xc3\x9f""e, \xc3\x9c""ber; \xc3\xa4""lter: \xc3\xa7""a?", "Stra\xc3\x9f""e , \xc3\x9c""ber ; \xc3\xa4""lter : \xc3\xa7""a ?"},
{"\xeb\x82\x98""\xeb\x8a\x94"" \xed\x95\x99""\xea\xb5\x90""\xec\x97\x90"" \xea\xb0\x91""\xeb\x8b\x88""\xeb\x8b\xa4"".", "\xeb\x82\x98""\xeb\x8a\x94"" \xed\x95\x99""\xea\xb5\x90""\xec\x97\x90"" \xea\xb0\x91""\xeb\x8b\x88""\xeb\x8b\xa4"" ."},
{"  many   spaces\x09""\x09""tabs ", "many spaces tabs"},
{"&quot;q&quot; &amp;amp; &lt;&gt;", "\" q \" & amp ; < >"},
{"line<skipped>s", "lines"},
{"hy-\nphen\nnext", "hyphen next"},
{"\xc2\xa0""nbsp\xe3\x80\x80""ideo", "nbsp ideo"},
{"\xe2\x80\x9c""quoted\xe2\x80\x9d"" \xe2\x80\xa6"" \xe2\x80\x93"" dash", "\xe2\x80\x9c""quoted\xe2\x80\x9d"" \xe2\x80\xa6"" \xe2\x80\x93"" dash"},
{"", ""},
{"3.", "3 ."},
{".5", ". 5"},
{"a,1", "a , 1"},
{"1,a", "1 , a"},
};

Test(tok13a, matches_the_mteval_rules_as_python_applies_them)
{
    for (size_t i = 0; i < sizeof tok_cases / sizeof *tok_cases; i++) {
        char *t = s2s_tok13a(tok_cases[i][0]);
        cr_assert_not_null(t);
        cr_assert_str_eq(t, tok_cases[i][1], "case %zu: '%s'", i, tok_cases[i][0]);
        free(t);
    }
}

/* ------------------------------------------------------------------ corpus scores */

typedef struct score_set {
    const char *name;
    const char *hyp[4], *ref[4];
    int n;
    double bleu_exp, bleu_none, chrf; /* from score_refs.py */
} score_set;

static const score_set sets[] = {
    {"punct",
     {"The cat sat on the mat.", "It's 3.5 km (about 2 miles) away!",
      "Prices rose by 1,000 dollars in 2009-10, didn't they?"},
     {"The cat sat on the mat.", "It is 3.5 km (2 miles) away.",
      "Prices rose by $1,000 in 2009-2010, did they not?"},
     3, 44.3213269829, 44.3213269829, 67.1294620220},
    {"latin",
     {"Der Hund läuft schnell über die Straße.", "Ich möchte einen Kaffee, bitte!",
      "L'été dernier, nous sommes allés à Paris.", "Ça coûte 12,50 €."},
     {"Der Hund rennt schnell über die Straße.", "Ich hätte gern einen Kaffee, bitte.",
      "L'été dernier, nous étions à Paris.", "Ça coûte 12,50 € ."},
     4, 56.7936092355, 56.7936092355, 73.3736592543},
    {"hangul",
     {"나는 학교에 갑니다.", "그는 빨리 달립니다!", "오늘 날씨가 좋습니다.",
      "우리는 내일 서울로 갑니다."},
     {"나는 학교에 간다.", "그는 빠르게 달립니다.", "오늘은 날씨가 좋네요.",
      "우리는 내일 아침에 서울로 갑니다."},
     4, 20.8980074340, 0.0, 39.9575676281},
    {"smoothing",
     {"the quick brown fox", "a b c d e"},
     {"the quick red fox jumps", "a c b d e x"},
     2, 17.1747198596, 0.0, 37.2158740940},
    {"entities",
     {"Tom &amp; Jerry said &quot;hi&quot;\u00a0there\t!\n", "x &lt; y &gt; z"},
     {"Tom & Jerry said \"hi\" there!", "x < y > z"},
     2, 100.0, 100.0, 44.9841207503},
    /* chrF published by the Hugging Face chrF metric card (sacreBLEU 2.x,
     * huggingface/datasets metrics/chrf/README.md): 61.576379378113785 and
     * 84.64214891738334; score_refs.py gives the same to 10 digits */
    {"hf_chrf_1",
     {"The relationship between Obama and Netanyahu is not exactly friendly."},
     {"The ties between Obama and Netanyahu are not particularly friendly."},
     1, 29.9822138934, 29.9822138934, 61.576379378113785},
    {"hf_chrf_2",
     {"The relationship between cats and dogs is not exactly friendly.",
      "a good bookshop is just a genteel black hole that knows how to read."},
     {"The relationship between dogs and cats is not exactly friendly.",
      "A good bookshop is just a genteel Black Hole that knows how to read."},
     2, 59.8922248530, 59.8922248530, 84.64214891738334},
};

#define TOL 1e-8 /* the references are printed with 10 decimals */

Test(scores, bleu_and_chrf_match_the_independent_values)
{
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        const score_set *s = &sets[i];
        s2s_bleu b;
        s2s_chrf c;
        s2s_bleu_init(&b);
        s2s_chrf_init(&c);
        for (int k = 0; k < s->n; k++) {
            cr_assert_eq(s2s_bleu_add_text(&b, s->hyp[k], s->ref[k]), 0);
            cr_assert_eq(s2s_chrf_add(&c, s->hyp[k], s->ref[k]), 0);
        }
        double be = s2s_bleu_score_smoothed(&b), bn = s2s_bleu_score(&b), cf = s2s_chrf_score(&c);
        cr_assert(fabs(be - s->bleu_exp) < TOL, "%s: smoothed BLEU %.10f, expected %.10f",
                  s->name, be, s->bleu_exp);
        cr_assert(fabs(bn - s->bleu_none) < TOL, "%s: BLEU %.10f, expected %.10f", s->name, bn,
                  s->bleu_none);
        cr_assert(fabs(cf - s->chrf) < TOL, "%s: chrF %.10f, expected %.10f", s->name, cf,
                  s->chrf);
    }
}

Test(scores, exact_match_and_edge_cases)
{
    s2s_bleu b;
    s2s_chrf c;
    s2s_bleu_init(&b);
    s2s_chrf_init(&c);
    cr_assert_eq(s2s_bleu_score_smoothed(&b), 0);
    cr_assert_eq(s2s_chrf_score(&c), 0);
    /* the same text up to 13a's spacing is an exact match */
    s2s_bleu_add_text(&b, "Hello , world!", "Hello, world !");
    s2s_bleu_add_text(&b, "", "not empty");
    cr_assert_eq(b.exact, 1);
    cr_assert_eq(b.sentences, 2);
    cr_assert_eq(b.hyp_len, 4);
    cr_assert_eq(b.ref_len, 6);
    /* empty hypothesis against text, empty against empty: no NaN */
    s2s_chrf_add(&c, "", "abc");
    s2s_chrf_add(&c, "", "");
    cr_assert_eq(s2s_chrf_score(&c), 0);
    /* the empty hypothesis still counts against recall: P = 1, R = 1/2 */
    s2s_chrf_add(&c, "abc", "abc");
    double want = 100.0 * 5 * 0.5 / (4 + 0.5);
    cr_assert(fabs(s2s_chrf_score(&c) - want) < 1e-12, "%f", s2s_chrf_score(&c));
    /* invalid UTF-8 is counted, not a crash */
    s2s_chrf_init(&c);
    s2s_chrf_add(&c, "a\xff" "b\xe2\x82", "a\xff" "b\xe2\x82");
    cr_assert(fabs(s2s_chrf_score(&c) - 100.0) < 1e-12);
}
