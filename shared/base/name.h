/* name.h - the names T2 passes around (services, experts, profiles, labels, groups, workers):
 * 1..max bytes of [A-Za-z0-9._:/-]. The wire (proto), the deployment file (deploy), profiles
 * (svf) and the processes that make their own names all use this one rule. */
#ifndef T2_NAME_H
#define T2_NAME_H

#include <stddef.h>

/* 1 if the byte c may stand in a name. */
int t2_name_char_ok(unsigned char c);

/* 1 if s[0..n) is a name of 1..max bytes. */
int t2_name_ok(const char *s, size_t n, size_t max);

/* Make the NUL-terminated s a name in place: every byte outside the set becomes '-'. */
void t2_name_sanitize(char *s);

#endif
