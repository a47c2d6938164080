/* The built-in English -> Korean corpus: a deterministic, seeded generator of
 * sentence pairs in the style of the seed pair
 *     "I study deeplearning"  ->  "나 는 딥러닝 을 공부 한다"
 * (Korean tokens separated by spaces, particles as their own tokens).
 *
 * The target side needs sequence modelling, not word-by-word lookup:
 *   - order: English S V O becomes Korean S O V;
 *   - particles follow the final sound of the noun before them, computed from
 *     the Hangul code point ((cp - 0xAC00) % 28 != 0: consonant-final):
 *     topic 은/는 after the subject, object 을/를 (or 이/가 for the verbs
 *     "need" and "have", whose Korean takes a subject-marked object);
 *   - tense (present, past, future) comes from the English verb form and
 *     changes the Korean ending (공부 한다 / 공부 했다 / 공부 할 것이다);
 *   - an optional time phrase agreeing with the tense ("yesterday" only with
 *     the past, ...) and an optional place phrase ("in the library" ->
 *     "도서관 에서") move before the object and verb; English puts the time
 *     first or last, Korean right after the subject:
 *         yesterday I studied math in the library
 *         나 는 어제 도서관 에서 수학 을 공부 했다
 *
 * The test set holds out whole subject-verb-object combinations: a triple
 * (s, v, o) is either a training triple or a test triple, chosen by a hash of
 * (seed, s, v, o), so test sentences never repeat a training combination.
 * (I, study, deeplearning) is always a test triple, and the seed pair itself
 * is the first test pair. */
#ifndef S2S_CORPUS_ENKO_H
#define S2S_CORPUS_ENKO_H

#include <stddef.h>
#include <stdint.h>

#include "pairs.h"

enum { ENKO_PRESENT = 0, ENKO_PAST = 1, ENKO_FUTURE = 2 };
enum { ENKO_PARTICLE_OBJECT = 0, ENKO_PARTICLE_SUBJECT = 1 }; /* 을/를 or 이/가 */

typedef struct enko_subject {
    const char *en, *ko;
    int third_singular; /* English present takes -s */
} enko_subject;

typedef struct enko_object {
    const char *en, *ko;
    unsigned category; /* ENKO_CAT_* bit */
} enko_object;

typedef struct enko_verb {
    const char *en_base, *en_3sg, *en_past;
    const char *ko[3];   /* indexed by ENKO_PRESENT / PAST / FUTURE */
    int object_particle; /* ENKO_PARTICLE_* */
    unsigned objects;    /* mask of ENKO_CAT_* the verb takes */
} enko_verb;

typedef struct enko_phrase {
    const char *en, *ko;
    int tense; /* time phrases: the tense they require; places: -1 */
} enko_phrase;

/* The lexicon (read-only tables). */
typedef struct enko_lexicon {
    const enko_subject *subjects;
    const enko_verb *verbs;
    const enko_object *objects;
    const enko_phrase *times, *places;
    int n_subjects, n_verbs, n_objects, n_times, n_places;
} enko_lexicon;

const enko_lexicon *enko_lexicon_get(void);

/* One sentence, as the choices that make it. */
typedef struct enko_choice {
    int subject, verb, object, tense;
    int time;       /* index into times, or -1 */
    int place;      /* index into places, or -1 */
    int time_first; /* English puts the time phrase first (else last) */
} enko_choice;

/* Renders a choice into an English and a Korean sentence (tokens separated
 * by single spaces). Returns 0, or -1 if a buffer is too small or the choice
 * is not valid (object not taken by the verb, time disagreeing with tense). */
int enko_render(const enko_choice *c, char *en, size_t en_size, char *ko, size_t ko_size);
int enko_choice_valid(const enko_choice *c);

/* 1 if the last Hangul syllable of the UTF-8 word ends in a consonant
 * (batchim), 0 if it ends in a vowel or is not Hangul. */
int enko_has_batchim(const char *word);

/* Whether triple (s, v, o) is held out for the test set under seed. */
int enko_triple_is_test(uint64_t seed, double holdout_frac, int s, int v, int o);

typedef struct enko_options {
    uint64_t seed;
    int n_train, n_test;
    double holdout_frac; /* share of S-V-O triples reserved for the test set */
    double p_time, p_place;
} enko_options;

void enko_options_default(enko_options *o);

/* Appends n_train training pairs and n_test distinct test pairs (the seed
 * pair first) to train and test. If choices_train / choices_test are not
 * NULL they receive malloc'd arrays of the choices (caller frees).
 * Returns 0, or -1 with a message in err (out of memory, too few test triples
 * for n_test distinct pairs). */
int enko_generate(const enko_options *o, s2s_pairs *train, s2s_pairs *test,
                  enko_choice **choices_train, enko_choice **choices_test, char *err,
                  size_t errlen);

#endif
