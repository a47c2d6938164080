/* The built-in English -> Korean corpus (see corpus_enko.h for the grammar). */
#include "corpus_enko.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

enum {
    CAT_STUDY = 1u << 0, /* school subjects */
    CAT_FOOD = 1u << 1,
    CAT_DRINK = 1u << 2,
    CAT_TEXT = 1u << 3,  /* things written */
    CAT_SHOW = 1u << 4,  /* things watched */
    CAT_THING = 1u << 5,
    CAT_ART = 1u << 6,   /* songs, pictures */
    CAT_ALL = 0x7f,
};

/* Subjects: vowel- and consonant-final nouns, singular and plural. */
static const enko_subject subjects[] = {
    {"I", "나", 0},
    {"you", "너", 0},
    {"he", "그", 1},
    {"she", "그녀", 1},
    {"we", "우리", 0},
    {"they", "그들", 0},
    {"the teacher", "선생님", 1},
    {"the student", "학생", 1},
    {"my friend", "내 친구", 1},
    {"the doctor", "의사", 1},
    {"Minsu", "민수", 1},
    {"Jihoon", "지훈", 1},
};

static const enko_object objects[] = {
    {"deeplearning", "딥러닝", CAT_STUDY},
    {"math", "수학", CAT_STUDY},
    {"english", "영어", CAT_STUDY},
    {"korean", "한국어", CAT_STUDY},
    {"history", "역사", CAT_STUDY},
    {"physics", "물리학", CAT_STUDY},
    {"music", "음악", CAT_STUDY},
    {"chemistry", "화학", CAT_STUDY},
    {"bread", "빵", CAT_FOOD},
    {"rice", "밥", CAT_FOOD},
    {"kimchi", "김치", CAT_FOOD},
    {"apples", "사과", CAT_FOOD},
    {"noodles", "국수", CAT_FOOD},
    {"cake", "케이크", CAT_FOOD},
    {"pizza", "피자", CAT_FOOD},
    {"soup", "국", CAT_FOOD},
    {"water", "물", CAT_DRINK},
    {"coffee", "커피", CAT_DRINK},
    {"milk", "우유", CAT_DRINK},
    {"tea", "차", CAT_DRINK},
    {"juice", "주스", CAT_DRINK},
    {"books", "책", CAT_TEXT},
    {"letters", "편지", CAT_TEXT},
    {"poems", "시", CAT_TEXT},
    {"novels", "소설", CAT_TEXT},
    {"newspapers", "신문", CAT_TEXT},
    {"movies", "영화", CAT_SHOW},
    {"dramas", "드라마", CAT_SHOW},
    {"soccer", "축구", CAT_SHOW},
    {"baseball", "야구", CAT_SHOW},
    {"computers", "컴퓨터", CAT_THING},
    {"bags", "가방", CAT_THING},
    {"shoes", "신발", CAT_THING},
    {"umbrellas", "우산", CAT_THING},
    {"phones", "전화기", CAT_THING},
    {"pencils", "연필", CAT_THING},
    {"flowers", "꽃", CAT_THING},
    {"songs", "노래", CAT_ART},
    {"pictures", "그림", CAT_ART},
};

/* English forms are unambiguous (no "read"/"read"), so the tense can always
 * be told from the source sentence. */
static const enko_verb verbs[] = {
    {"study", "studies", "studied", {"공부 한다", "공부 했다", "공부 할 것이다"},
     ENKO_PARTICLE_OBJECT, CAT_STUDY},
    {"learn", "learns", "learned", {"배운다", "배웠다", "배울 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_STUDY | CAT_ART},
    {"teach", "teaches", "taught", {"가르친다", "가르쳤다", "가르칠 것이다"},
     ENKO_PARTICLE_OBJECT, CAT_STUDY | CAT_ART},
    {"write", "writes", "wrote", {"쓴다", "썼다", "쓸 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_TEXT | CAT_ART},
    {"eat", "eats", "ate", {"먹는다", "먹었다", "먹을 것이다"}, ENKO_PARTICLE_OBJECT, CAT_FOOD},
    {"drink", "drinks", "drank", {"마신다", "마셨다", "마실 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_DRINK},
    {"cook", "cooks", "cooked", {"요리 한다", "요리 했다", "요리 할 것이다"},
     ENKO_PARTICLE_OBJECT, CAT_FOOD},
    {"buy", "buys", "bought", {"산다", "샀다", "살 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_FOOD | CAT_DRINK | CAT_TEXT | CAT_THING},
    {"sell", "sells", "sold", {"판다", "팔았다", "팔 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_FOOD | CAT_DRINK | CAT_TEXT | CAT_THING},
    {"like", "likes", "liked", {"좋아 한다", "좋아 했다", "좋아 할 것이다"},
     ENKO_PARTICLE_OBJECT, CAT_ALL},
    {"love", "loves", "loved", {"사랑 한다", "사랑 했다", "사랑 할 것이다"},
     ENKO_PARTICLE_OBJECT, CAT_ALL},
    {"watch", "watches", "watched", {"본다", "봤다", "볼 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_SHOW},
    {"make", "makes", "made", {"만든다", "만들었다", "만들 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_FOOD | CAT_THING | CAT_ART},
    {"draw", "draws", "drew", {"그린다", "그렸다", "그릴 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_THING | CAT_ART},
    {"find", "finds", "found", {"찾는다", "찾았다", "찾을 것이다"}, ENKO_PARTICLE_OBJECT,
     CAT_TEXT | CAT_THING},
    /* Korean marks what is needed or had with 이/가, and 필요하다 is an
     * adjective: present 필요 하다, not 필요 한다. */
    {"need", "needs", "needed", {"필요 하다", "필요 했다", "필요 할 것이다"},
     ENKO_PARTICLE_SUBJECT, CAT_FOOD | CAT_DRINK | CAT_TEXT | CAT_THING},
    {"have", "has", "had", {"있다", "있었다", "있을 것이다"}, ENKO_PARTICLE_SUBJECT,
     CAT_FOOD | CAT_DRINK | CAT_TEXT | CAT_THING},
};

static const enko_phrase times[] = {
    {"yesterday", "어제", ENKO_PAST},
    {"last week", "지난주 에", ENKO_PAST},
    {"last year", "작년 에", ENKO_PAST},
    {"now", "지금", ENKO_PRESENT},
    {"every day", "매일", ENKO_PRESENT},
    {"every morning", "매일 아침", ENKO_PRESENT},
    {"tomorrow", "내일", ENKO_FUTURE},
    {"next week", "다음 주 에", ENKO_FUTURE},
    {"next year", "내년 에", ENKO_FUTURE},
};

static const enko_phrase places[] = {
    {"in the library", "도서관 에서", -1}, {"at school", "학교 에서", -1},
    {"at home", "집 에서", -1},            {"in the park", "공원 에서", -1},
    {"at the office", "회사 에서", -1},     {"in the cafe", "카페 에서", -1},
    {"in the kitchen", "부엌 에서", -1},    {"at the market", "시장 에서", -1},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const enko_lexicon lexicon = {subjects, verbs,          objects,         times,
                                     places,   COUNT(subjects), COUNT(verbs), COUNT(objects),
                                     COUNT(times), COUNT(places)};

const enko_lexicon *enko_lexicon_get(void) { return &lexicon; }

/* Code point of the last UTF-8 character of s (0 for ""). */
static uint32_t last_code_point(const char *s)
{
    size_t n = strlen(s);
    if (n == 0) return 0;
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    const unsigned char *p = (const unsigned char *)s + i;
    if (p[0] < 0x80) return p[0];
    if ((p[0] & 0xE0) == 0xC0) return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if ((p[0] & 0xF0) == 0xE0)
        return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
           ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

int enko_has_batchim(const char *word)
{
    /* A precomposed syllable is 0xAC00 + (initial*21 + vowel)*28 + final,
     * final 0 meaning no final consonant. */
    uint32_t cp = last_code_point(word);
    if (cp < 0xAC00 || cp > 0xD7A3) return 0;
    return (cp - 0xAC00) % 28 != 0;
}

/* "은"/"는", "이"/"가", "을"/"를" after noun. */
static const char *topic_particle(const char *noun) { return enko_has_batchim(noun) ? "은" : "는"; }
static const char *subject_particle(const char *noun)
{
    return enko_has_batchim(noun) ? "이" : "가";
}
static const char *object_particle(const char *noun) { return enko_has_batchim(noun) ? "을" : "를"; }

int enko_choice_valid(const enko_choice *c)
{
    if (c->subject < 0 || c->subject >= lexicon.n_subjects) return 0;
    if (c->verb < 0 || c->verb >= lexicon.n_verbs) return 0;
    if (c->object < 0 || c->object >= lexicon.n_objects) return 0;
    if (c->tense < ENKO_PRESENT || c->tense > ENKO_FUTURE) return 0;
    if (!(verbs[c->verb].objects & objects[c->object].category)) return 0;
    if (c->time < -1 || c->time >= lexicon.n_times) return 0;
    if (c->time >= 0 && times[c->time].tense != c->tense) return 0;
    if (c->place < -1 || c->place >= lexicon.n_places) return 0;
    return 1;
}

/* Appends " word" (or "word" at the start) to buf; -1 if it does not fit. */
static int append(char *buf, size_t size, size_t *len, const char *word)
{
    size_t w = strlen(word), sep = *len > 0;
    if (*len + sep + w + 1 > size) return -1;
    if (sep) buf[(*len)++] = ' ';
    memcpy(buf + *len, word, w + 1);
    *len += w;
    return 0;
}

static const char *english_verb(const enko_verb *v, int tense, int third_singular, char *tmp,
                                size_t n)
{
    if (tense == ENKO_PAST) return v->en_past;
    if (tense == ENKO_FUTURE) {
        snprintf(tmp, n, "will %s", v->en_base);
        return tmp;
    }
    return third_singular ? v->en_3sg : v->en_base;
}

static int render_english(const enko_choice *c, char *en, size_t size)
{
    const enko_subject *s = &subjects[c->subject];
    char vbuf[64];
    size_t len = 0;
    int rc = 0;
    en[0] = '\0';
    if (c->time >= 0 && c->time_first) rc |= append(en, size, &len, times[c->time].en);
    rc |= append(en, size, &len, s->en);
    rc |= append(en, size, &len,
                 english_verb(&verbs[c->verb], c->tense, s->third_singular, vbuf, sizeof vbuf));
    rc |= append(en, size, &len, objects[c->object].en);
    if (c->place >= 0) rc |= append(en, size, &len, places[c->place].en);
    if (c->time >= 0 && !c->time_first) rc |= append(en, size, &len, times[c->time].en);
    return rc;
}

/* S 은/는 [time] [place] O 을/를|이/가 V */
static int render_korean(const enko_choice *c, char *ko, size_t size)
{
    const char *s = subjects[c->subject].ko, *o = objects[c->object].ko;
    const enko_verb *v = &verbs[c->verb];
    size_t len = 0;
    int rc = 0;
    ko[0] = '\0';
    rc |= append(ko, size, &len, s);
    rc |= append(ko, size, &len, topic_particle(s));
    if (c->time >= 0) rc |= append(ko, size, &len, times[c->time].ko);
    if (c->place >= 0) rc |= append(ko, size, &len, places[c->place].ko);
    rc |= append(ko, size, &len, o);
    rc |= append(ko, size, &len,
                 v->object_particle == ENKO_PARTICLE_SUBJECT ? subject_particle(o)
                                                             : object_particle(o));
    rc |= append(ko, size, &len, v->ko[c->tense]);
    return rc;
}

int enko_render(const enko_choice *c, char *en, size_t en_size, char *ko, size_t ko_size)
{
    if (!enko_choice_valid(c)) return -1;
    if (render_english(c, en, en_size) != 0) return -1;
    return render_korean(c, ko, ko_size);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int is_seed_triple(int s, int v, int o) { return s == 0 && v == 0 && o == 0; }

int enko_triple_is_test(uint64_t seed, double holdout_frac, int s, int v, int o)
{
    if (is_seed_triple(s, v, o)) return 1; /* "I study deeplearning" is never trained on */
    uint64_t key = mix64(seed ^ 0x5eed5eedull) ^ ((uint64_t)s << 32 | (uint64_t)v << 16 | (uint64_t)o);
    double u = (double)(mix64(key + 0x9e3779b97f4a7c15ull) >> 11) * 0x1.0p-53;
    return u < holdout_frac;
}

void enko_options_default(enko_options *o)
{
    o->seed = 1;
    o->n_train = 20000;
    o->n_test = 1000;
    o->holdout_frac = 0.15;
    o->p_time = 0.5;
    o->p_place = 0.5;
}

typedef struct triple {
    int s, v, o;
} triple;

/* All valid (s, v, o) triples split into train and test lists. */
static int list_triples(const enko_options *o, triple **tr, int *ntr, triple **te, int *nte)
{
    int max = lexicon.n_subjects * lexicon.n_verbs * lexicon.n_objects;
    *tr = malloc((size_t)max * sizeof **tr);
    *te = malloc((size_t)max * sizeof **te);
    if (!*tr || !*te) return -1;
    *ntr = *nte = 0;
    for (int s = 0; s < lexicon.n_subjects; s++)
        for (int v = 0; v < lexicon.n_verbs; v++)
            for (int b = 0; b < lexicon.n_objects; b++) {
                if (!(verbs[v].objects & objects[b].category)) continue;
                triple t = {s, v, b};
                if (enko_triple_is_test(o->seed, o->holdout_frac, s, v, b))
                    (*te)[(*nte)++] = t;
                else
                    (*tr)[(*ntr)++] = t;
            }
    return 0;
}

/* Index of the k-th time phrase (k uniform) that agrees with tense. */
static int draw_time(tg_rng *r, int tense)
{
    int match[16], n = 0;
    for (int i = 0; i < lexicon.n_times; i++)
        if (times[i].tense == tense) match[n++] = i;
    return match[tg_rng_below(r, (uint32_t)n)];
}

static enko_choice draw_choice(tg_rng *r, const enko_options *o, const triple *t)
{
    enko_choice c;
    c.subject = t->s;
    c.verb = t->v;
    c.object = t->o;
    c.tense = (int)tg_rng_below(r, 3);
    c.time = tg_rng_uniform(r) < o->p_time ? draw_time(r, c.tense) : -1;
    c.place = tg_rng_uniform(r) < o->p_place ? (int)tg_rng_below(r, (uint32_t)lexicon.n_places) : -1;
    c.time_first = c.time >= 0 ? (int)tg_rng_below(r, 2) : 0;
    return c;
}

static uint64_t choice_code(const enko_choice *c)
{
    uint64_t k = (uint64_t)c->subject;
    k = k * 64 + (uint64_t)c->verb;
    k = k * 64 + (uint64_t)c->object;
    k = k * 4 + (uint64_t)c->tense;
    k = k * 32 + (uint64_t)(c->time + 1);
    k = k * 32 + (uint64_t)(c->place + 1);
    return k * 2 + (uint64_t)c->time_first;
}

/* Open-addressing set of choice codes (test pairs are distinct). */
typedef struct code_set {
    uint64_t *slot; /* code + 1; 0 empty */
    size_t n;
} code_set;

static int code_set_insert(code_set *s, uint64_t code)
{
    size_t i = (size_t)mix64(code) & (s->n - 1);
    while (s->slot[i] != 0) {
        if (s->slot[i] == code + 1) return 0;
        i = (i + 1) & (s->n - 1);
    }
    s->slot[i] = code + 1;
    return 1;
}

static int add_pair(s2s_pairs *p, const enko_choice *c)
{
    char en[256], ko[256];
    if (enko_render(c, en, sizeof en, ko, sizeof ko) != 0) return -1;
    return s2s_pairs_add(p, en, ko, 0);
}

static int generate_test(const enko_options *o, tg_rng *r, const triple *te, int nte,
                         s2s_pairs *test, enko_choice *out, char *err, size_t errlen)
{
    code_set set = {NULL, 1};
    while (set.n < (size_t)o->n_test * 4 + 16) set.n *= 2;
    set.slot = calloc(set.n, sizeof *set.slot);
    if (!set.slot) return snprintf(err, errlen, "out of memory"), -1;
    int made = 0, rc = 0;
    long tries = 0;
    if (o->n_test > 0) { /* the seed pair: I study deeplearning */
        enko_choice seed = {0, 0, 0, ENKO_PRESENT, -1, -1, 0};
        code_set_insert(&set, choice_code(&seed));
        out[made++] = seed;
    }
    while (made < o->n_test && nte > 0) {
        if (++tries > 1000L * o->n_test) break;
        enko_choice c = draw_choice(r, o, &te[tg_rng_below(r, (uint32_t)nte)]);
        if (code_set_insert(&set, choice_code(&c))) out[made++] = c;
    }
    free(set.slot);
    if (made < o->n_test) {
        snprintf(err, errlen, "only %d distinct test pairs can be drawn from %d held-out triples",
                 made, nte);
        return -1;
    }
    for (int i = 0; i < made && rc == 0; i++) rc = add_pair(test, &out[i]);
    if (rc) snprintf(err, errlen, "out of memory");
    return rc;
}

int enko_generate(const enko_options *o, s2s_pairs *train, s2s_pairs *test,
                  enko_choice **choices_train, enko_choice **choices_test, char *err,
                  size_t errlen)
{
    triple *tr = NULL, *te = NULL;
    int ntr = 0, nte = 0, rc = -1;
    enko_choice *ctr = malloc(((size_t)o->n_train + 1) * sizeof *ctr);
    enko_choice *cte = malloc(((size_t)o->n_test + 1) * sizeof *cte);
    tg_rng r;
    tg_rng_seed(&r, o->seed);
    if (!ctr || !cte || list_triples(o, &tr, &ntr, &te, &nte) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (ntr == 0) {
        snprintf(err, errlen, "holdout fraction %g leaves no training triples", o->holdout_frac);
        goto done;
    }
    for (int i = 0; i < o->n_train; i++) {
        ctr[i] = draw_choice(&r, o, &tr[tg_rng_below(&r, (uint32_t)ntr)]);
        if (add_pair(train, &ctr[i]) != 0) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
    }
    /* a separate stream, so the test set does not depend on n_train */
    tg_rng_seed(&r, o->seed ^ 0x7e577e57ull);
    if (generate_test(o, &r, te, nte, test, cte, err, errlen) != 0) goto done;
    rc = 0;
done:
    free(tr);
    free(te);
    if (rc == 0 && choices_train) *choices_train = ctr; else free(ctr);
    if (rc == 0 && choices_test) *choices_test = cte; else free(cte);
    return rc;
}
