/* test_label_score.c - pass 1 by scoring (shared/tasks/label_score.h): the prefix and tails
 * against the tokenizer's own encodings, the greedy walk over tails that share leading tokens,
 * and the checks of a table that came from another rank. */
#include "t2_test.h"

#include "base/t2_err.h"
#include "engine/tokenizer.h"
#include "tasks/label_score.h"

#define V 64

/* A hand-made table: code 5 6, math 5 7, reasoning 8, other 9 (code and math share a token). */
static t2_lscore table(void) {
    t2_lscore w = {.n_labels = T2_LABEL_COUNT, .cand = 15};
    const int tails[4][2] = {{5, 6}, {5, 7}, {8, 0}, {9, 0}}, lens[4] = {2, 2, 1, 1};
    for (int l = 0; l < 4; l++) {
        w.len[l] = lens[l];
        for (int i = 0; i < lens[l]; i++)
            w.tok[l][i] = tails[l][i];
    }
    return w;
}

static void test_walk_shared_prefix(void) {
    float logits[V] = {0};
    t2_lscore w = table();
    T2_CHECK_EQ_INT(t2_lscore_check(&w, V), 0);
    logits[5] = 2, logits[8] = 1, logits[9] = 1.5f, logits[6] = 0.5f, logits[7] = 3;
    T2_CHECK_EQ_INT(t2_lscore_label(&w), -1);
    T2_CHECK_EQ_INT(t2_lscore_pick(&w, logits), 5); /* code and math stay */
    T2_CHECK_EQ_INT(t2_lscore_label(&w), -1);
    T2_CHECK_EQ_INT(t2_lscore_pick(&w, logits), 7);
    T2_CHECK_EQ_INT(t2_lscore_label(&w), T2_LABEL_MATH);
    T2_CHECK_EQ_INT(t2_lscore_pick(&w, logits), -1); /* decided: nothing to pick */
    /* a distinct first token decides at once */
    w = table();
    logits[9] = 4;
    T2_CHECK_EQ_INT(t2_lscore_pick(&w, logits), 9);
    T2_CHECK_EQ_INT(t2_lscore_label(&w), T2_LABEL_OTHER);
    /* the head mirrors the tail's tokens */
    w = table();
    T2_CHECK_EQ_INT(t2_lscore_follow(&w, 5), -1);
    T2_CHECK_EQ_INT(t2_lscore_follow(&w, 6), T2_LABEL_CODE);
    w = table();
    T2_CHECK_EQ_INT(t2_lscore_follow(&w, 33), -1); /* not a label token: nothing left */
    T2_CHECK(w.cand == 0);
    T2_CHECK_EQ_INT(t2_lscore_pick(&w, logits), -1);
}

/* The prefix tokens a generating pass must produce: a row whose argmax is another token leaves
 * no label ("other"). */
static void test_verify(void) {
    float rows[2 * V] = {0};
    t2_lscore w = table();
    w.n_check = 2;
    w.check[0] = 3, w.check[1] = 4;
    rows[3] = 1, rows[V + 4] = 1, rows[V + 5] = 0.5f;
    t2_lscore_verify(&w, rows, V);
    T2_CHECK_EQ_INT(w.cand, 15);
    rows[V + 5] = 2; /* greedy would write token 5 there */
    t2_lscore_verify(&w, rows, V);
    T2_CHECK_EQ_INT(w.cand, 0);
    T2_CHECK_EQ_INT(t2_lscore_label(&w), -1);
    w = table();
    w.n_check = T2_LSCORE_DEPTH + 1;
    T2_CHECK_EQ_INT(t2_lscore_check(&w, V), T2_EPROTO);
}

static void test_check_rejects(void) {
    t2_lscore w = table();
    w.len[2] = 0;
    T2_CHECK_EQ_INT(t2_lscore_check(&w, V), T2_EPROTO);
    w = table();
    w.tok[0][1] = V;
    T2_CHECK_EQ_INT(t2_lscore_check(&w, V), T2_EPROTO);
    w = table();
    w.cand = 0;
    T2_CHECK_EQ_INT(t2_lscore_check(&w, V), T2_EPROTO);
    w = table();
    w.len[1] = T2_LSCORE_DEPTH + 1;
    T2_CHECK_EQ_INT(t2_lscore_check(&w, V), T2_EPROTO);
    w = table();
    w.n_labels = 3;
    T2_CHECK_EQ_INT(t2_lscore_check(&w, V), T2_EPROTO);
}

/* Against a real vocabulary: prefix + tail l is the encoding of document l, and the walk with
 * logits that favour label l's tokens ends at l after as many picks as l shares tokens. */
static void check_vocab(const char *path, int vocab) {
    t2_tokenizer *tok = NULL;
    T2_CHECK_EQ_INT(t2_tok_load_llama2c(&tok, path, vocab), 0);
    if (!tok) return;
    const char *q = "Ivy had 24 bags, traded 8, then traded 9. How many now?";
    int pre[256], np = 0, doc[512], nd = 0;
    t2_lscore w;
    T2_CHECK_EQ_INT(t2_lscore_setup(tok, q, pre, 256, &np, &w), 0);
    T2_CHECK_EQ_INT(t2_lscore_check(&w, vocab), 0);
    char ptext[256];
    snprintf(ptext, sizeof ptext, "Classify: %s\n", q);
    T2_CHECK_EQ_INT(t2_tok_encode(tok, ptext, 1, 0, doc, 512, &nd), 0);
    T2_CHECK(w.n_check >= 1 && w.n_check <= np - 1);
    T2_CHECK(!memcmp(w.check, pre + np - w.n_check, (size_t)w.n_check * sizeof *pre));
    T2_CHECK(nd >= np - w.n_check); /* the prompt's own tokens are not checked */
    for (int l = 0; l < T2_LABEL_COUNT; l++) {
        char text[256];
        snprintf(text, sizeof text, "Classify: %s\n\\boxed{%s", q, t2_task_label_name(l));
        T2_CHECK_EQ_INT(t2_tok_encode(tok, text, 1, 0, doc, 512, &nd), 0);
        T2_CHECK_EQ_INT(nd, np + w.len[l]);
        T2_CHECK(!memcmp(doc, pre, (size_t)np * sizeof *pre));
        T2_CHECK(!memcmp(doc + np, w.tok[l], (size_t)w.len[l] * sizeof *pre));
        int shared = 0; /* tokens of l's tail that another label's tail starts with too */
        for (int o = 0; o < T2_LABEL_COUNT; o++) {
            int k = 0;
            while (o != l && k < w.len[l] && k < w.len[o] && w.tok[o][k] == w.tok[l][k])
                k++;
            if (k > shared) shared = k;
        }
        float *logits = calloc((size_t)vocab, sizeof *logits);
        for (int i = 0; i < w.len[l]; i++)
            logits[w.tok[l][i]] = 1.0f + (float)i;
        t2_lscore x = w;
        int picks = 0;
        while (t2_lscore_label(&x) < 0 && t2_lscore_pick(&x, logits) >= 0)
            picks++;
        T2_CHECK_EQ_INT(t2_lscore_label(&x), l);
        T2_CHECK_EQ_INT(picks, shared + 1);
        free(logits);
    }
    int small[4];
    T2_CHECK_EQ_INT(t2_lscore_setup(tok, q, small, 4, &np, &w), T2_ERANGE);
    t2_tok_destroy(&tok);
}

static void test_vocab_512(void) {
    check_vocab(t2_test_asset("models/tok512.bin"), 512);
}

static void test_vocab_32000(void) {
    check_vocab(t2_test_asset("models/tokenizer.bin"), 32000);
}

int main(void) {
    T2_RUN(test_walk_shared_prefix);
    T2_RUN(test_verify);
    T2_RUN(test_check_rejects);
    T2_RUN(test_vocab_512);
    T2_RUN(test_vocab_32000);
    return T2_TEST_END();
}
