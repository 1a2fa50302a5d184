/* unicode.c - UTF-8, categories and NFC for the byte-level BPE tokenizer (see unicode.h).
 *
 * NFC follows UAX #15: full canonical decomposition (tables, Hangul syllables by formula),
 * canonical ordering of each run of non-starters (stable by combining class), then canonical
 * composition with the last starter when the mark is not blocked.
 */
#include "engine/unicode.h"

#include "base/t2_err.h"

#include <stdlib.h>
#include <string.h>

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7 };
enum { LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

int t2_uni_valid_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (n < 4 || s[1] < lo || s[1] > hi) return 0;
        return (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

int t2_uni_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    int k = t2_uni_valid_len(s, n);
    switch (k) {
    case 1: *cp = s[0]; return 1;
    case 2: *cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F); return 2;
    case 3: *cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return 3;
    case 4:
        *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
              (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
        return 4;
    default: *cp = T2_UNI_INVALID | s[0]; return 1;
    }
}

int t2_uni_encode(uint32_t cp, unsigned char *o) {
    if (cp & T2_UNI_INVALID) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int range_value(const t2_uni_range *r, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return r[mid].value;
    }
    return 0;
}

unsigned t2_uni_flags(uint32_t cp) {
    if (cp & T2_UNI_INVALID) return 0;
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return T2_UNI_LETTER;
        if (cp >= '0' && cp <= '9') return T2_UNI_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return T2_UNI_SPACE;
        return 0;
    }
    return (unsigned)range_value(t2_uni_cat, t2_uni_n_cat, cp);
}

int t2_uni_ccc(uint32_t cp) {
    if (cp < 0x300 || (cp & T2_UNI_INVALID)) return 0;
    return range_value(t2_uni_ccc_tab, t2_uni_n_ccc_tab, cp);
}

/* Full canonical decomposition of cp into out (room for 4); returns its length. */
static int decompose(uint32_t cp, uint32_t *out) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        out[0] = LBASE + s / NCOUNT;
        out[1] = VBASE + s % NCOUNT / TCOUNT;
        if (s % TCOUNT == 0) return 2;
        out[2] = TBASE + s % TCOUNT;
        return 3;
    }
    if (cp >= 0xC0 && !(cp & T2_UNI_INVALID)) {
        int lo = 0, hi = t2_uni_n_decomp - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            const t2_uni_decomp *d = &t2_uni_decomp_tab[mid];
            if (cp < d->cp) hi = mid - 1;
            else if (cp > d->cp) lo = mid + 1;
            else {
                memcpy(out, t2_uni_decomp_pool + d->off, (size_t)d->len * sizeof *out);
                return d->len;
            }
        }
    }
    out[0] = cp;
    return 1;
}

/* The primary composite of a + b, or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE &&
        b < TBASE + TCOUNT)
        return a + (b - TBASE);
    if (b < 0x300 || ((a | b) & T2_UNI_INVALID)) return 0;
    int lo = 0, hi = t2_uni_n_comp - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const t2_uni_comp *c = &t2_uni_comp_tab[mid];
        if (a < c->a || (a == c->a && b < c->b)) hi = mid - 1;
        else if (a > c->a || b > c->b) lo = mid + 1;
        else return c->c;
    }
    return 0;
}

/* Canonical ordering then composition of cps[0..n) in place; returns the new length. */
static size_t reorder_compose(uint32_t *cps, size_t n) {
    for (size_t i = 1; i < n; i++) { /* insertion sort within runs of non-starters */
        int c = t2_uni_ccc(cps[i]);
        if (c == 0) continue;
        uint32_t v = cps[i];
        size_t j = i;
        while (j > 0 && t2_uni_ccc(cps[j - 1]) > c) {
            cps[j] = cps[j - 1];
            j--;
        }
        cps[j] = v;
    }
    size_t w = 0, starter = (size_t)-1;
    int last_ccc = -1; /* ccc of the last kept character after the starter; -1: adjacent */
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cps[i];
        int c = t2_uni_ccc(cp);
        if (starter != (size_t)-1 && (last_ccc == -1 || (last_ccc != 0 && last_ccc < c))) {
            uint32_t comp = compose(cps[starter], cp);
            if (comp) {
                cps[starter] = comp;
                continue;
            }
        }
        if (c == 0) {
            starter = w;
            last_ccc = -1;
        } else {
            last_ccc = c;
        }
        cps[w++] = cp;
    }
    return w;
}

int t2_uni_nfc(const char *s, size_t n, char **out, size_t *out_len) {
    const unsigned char *u = (const unsigned char *)s;
    *out = NULL;
    *out_len = 0;
    size_t i = 0;
    while (i < n && u[i] < 0xCC) i++; /* code points below U+0300 are stable and final */
    /* Keep that prefix except its last character, which may compose with what follows. */
    if (i > 0 && i < n) {
        i--;
        while (i > 0 && (u[i] & 0xC0) == 0x80) i--;
    }
    uint32_t *cps = malloc((4 * (n - i) + 1) * sizeof *cps); /* <= 4 code points a byte */
    if (!cps) return t2_err_set(T2_ENOMEM, "unicode: out of memory normalizing %zu bytes", n);
    size_t m = 0;
    for (size_t k = i; k < n;) {
        uint32_t cp;
        k += (size_t)t2_uni_decode(u + k, n - k, &cp);
        m += (size_t)decompose(cp, cps + m);
    }
    m = reorder_compose(cps, m);
    char *o = malloc(i + 4 * m + 1);
    if (!o) {
        free(cps);
        return t2_err_set(T2_ENOMEM, "unicode: out of memory normalizing %zu bytes", n);
    }
    memcpy(o, s, i);
    size_t len = i;
    for (size_t k = 0; k < m; k++) len += (size_t)t2_uni_encode(cps[k], (unsigned char *)o + len);
    o[len] = 0;
    free(cps);
    *out = o;
    *out_len = len;
    return 0;
}

size_t t2_uni_complete(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    /* Look at the last up-to-3 bytes for the lead byte of an unfinished sequence. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = u[n - back];
        if ((c & 0xC0) == 0x80) continue;
        int need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        if ((size_t)need <= back) return n;
        /* Unfinished: hold it back if the next bytes can still make it valid (any lead
         * byte alone can; after that, continuation bytes 0x80 complete any valid start). */
        unsigned char tmp[4] = {0x80, 0x80, 0x80, 0x80};
        memcpy(tmp, u + n - back, back);
        return back == 1 || t2_uni_valid_len(tmp, (size_t)need) == need ? n - back : n;
    }
    return n;
}
