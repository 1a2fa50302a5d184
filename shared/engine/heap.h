/* heap.h - the binary heap of the tokenizers' merge queues (tokenizer.c, tokenizer_bpe.c), one
 * copy for any element type. Internal to engine/.
 *
 * T2_HEAP_DEFINE(name, type, before) defines, for an array h of *n elements of type:
 *   static void name_push(type *h, int *n, type x);  h has room for *n + 1; *n grows by one
 *   static type name_pop(type *h, int *n);           *n > 0: the first element in before's
 *                                                    order; *n shrinks by one
 * before(const type *a, const type *b) is 1 when a must come out before b (a strict order).
 */
#ifndef T2_HEAP_H
#define T2_HEAP_H

#define T2_HEAP_DEFINE(name, type, before)                                                     \
    static inline void name##_push(type *h, int *n, type x) {                                  \
        int i = (*n)++;                                                                        \
        while (i > 0 && before(&x, &h[(i - 1) / 2])) {                                         \
            h[i] = h[(i - 1) / 2];                                                             \
            i = (i - 1) / 2;                                                                   \
        }                                                                                      \
        h[i] = x;                                                                              \
    }                                                                                          \
    static inline type name##_pop(type *h, int *n) {                                           \
        type top = h[0], last = h[--(*n)];                                                     \
        int i = 0;                                                                             \
        for (;;) {                                                                             \
            int c = 2 * i + 1;                                                                 \
            if (c >= *n) break;                                                                \
            if (c + 1 < *n && before(&h[c + 1], &h[c])) c++;                                   \
            if (!before(&h[c], &last)) break;                                                  \
            h[i] = h[c];                                                                       \
            i = c;                                                                             \
        }                                                                                      \
        if (*n > 0) h[i] = last;                                                               \
        return top;                                                                            \
    }

#endif
