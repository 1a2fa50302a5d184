#include "base/name.h"

int t2_name_char_ok(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
}

int t2_name_ok(const char *s, size_t n, size_t max) {
    if (!s || n < 1 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if (!t2_name_char_ok((unsigned char)s[i])) return 0;
    return 1;
}

void t2_name_sanitize(char *s) {
    for (; *s; s++)
        if (!t2_name_char_ok((unsigned char)*s)) *s = '-';
}
