/* t2_curve.c - CurveZMQ key files and allowed-key sets (t2_curve.h). */
#include "t2_curve.h"

#include "base/t2_err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define KEY_FILE_MAX 65536 /* bytes of a key or list file we are willing to read */

static const char *const role_names[] = {"none", "client", "worker", "dispatcher"};

const char *t2_key_role_name(int role) {
    return role >= 0 && role <= T2_KEY_DISPATCHER ? role_names[role] : "?";
}

int t2_key_role_of(const char *uid) {
    if (!uid) return T2_KEY_NONE;
    for (int r = T2_KEY_CLIENT; r <= T2_KEY_DISPATCHER; r++) {
        size_t n = strlen(role_names[r]);
        if (!strncmp(uid, role_names[r], n) && uid[n] == ':') return r;
    }
    return T2_KEY_NONE;
}

/* 1 if s is 40 characters of valid Z85. */
static int z85_key_ok(const char *s) {
    uint8_t bin[32];
    return strlen(s) == T2_CURVE_KEY_LEN && zmq_z85_decode(bin, s) != NULL;
}

/* Read a small text file whole (NUL-terminated). */
static int read_small(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    fclose(f);
    if (n > KEY_FILE_MAX) {
        free(buf);
        return t2_err_set(T2_EFORMAT, "%s: larger than %d bytes: not a key file", path,
                          KEY_FILE_MAX);
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

/* The next line of *p (trimmed, comments removed) into line; 0 at the end. */
static int next_line(char **p, char *line, size_t cap) {
    while (**p) {
        char *s = *p, *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        *p = e ? e + 1 : s + n;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
        while (n && (*s == ' ' || *s == '\t')) s++, n--;
        if (!n || *s == '#') continue; /* only whole lines are comments: Z85 uses '#' */
        if (n >= cap) n = cap - 1;
        memcpy(line, s, n);
        line[n] = 0;
        return 1;
    }
    return 0;
}

/* "name = value" into its value (NULL if the line is not that). */
static const char *value_of(char *line, const char *name) {
    size_t n = strlen(name);
    if (strncmp(line, name, n)) return NULL;
    char *v = line + n;
    while (*v == ' ' || *v == '\t') v++;
    if (*v != '=') return NULL;
    v++;
    while (*v == ' ' || *v == '\t') v++;
    return v;
}

/* Parse a key file: the public and (if want_secret) secret keys. */
static int parse_keys(const char *path, const char *text, char *pub, char *sec) {
    char line[256], *p = (char *)text;
    pub[0] = 0;
    if (sec) sec[0] = 0;
    int ln = 0;
    while (next_line(&p, line, sizeof line)) {
        ln++;
        const char *v;
        char *dst = NULL;
        if ((v = value_of(line, "public"))) dst = pub;
        else if ((v = value_of(line, "secret"))) dst = sec;
        else return t2_err_set(T2_EFORMAT, "%s: line '%s' is not 'public = KEY' or "
                               "'secret = KEY'", path, line);
        if (!dst) continue; /* a secret in a file read for its public key */
        if (!z85_key_ok(v))
            return t2_err_set(T2_EFORMAT, "%s: %s key is not 40 characters of Z85", path,
                              dst == pub ? "the public" : "the secret");
        memcpy(dst, v, T2_CURVE_KEY_LEN + 1);
    }
    if (!pub[0]) return t2_err_set(T2_EFORMAT, "%s: no 'public = KEY' line", path);
    if (sec && !sec[0]) return t2_err_set(T2_EFORMAT, "%s: no 'secret = KEY' line", path);
    return 0;
}

int t2_curve_load_pair(const char *path, t2_curve_pair *out) {
    struct stat st;
    if (stat(path, &st) < 0) return t2_err_set(T2_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return t2_err_set(T2_EINVAL, "%s: not a regular file", path);
    if (st.st_mode & 077)
        return t2_err_set(T2_EINVAL, "%s: a secret key file must not be accessible to other "
                          "users (mode %03o; chmod 600 it)", path, (unsigned)(st.st_mode & 0777));
    char *text;
    int rc = read_small(path, &text);
    if (rc < 0) return rc;
    rc = parse_keys(path, text, out->public_key, out->secret_key);
    memset(text, 0, strlen(text));
    free(text);
    if (rc < 0) return rc;
    char derived[T2_CURVE_KEY_LEN + 1];
    if (zmq_curve_public(derived, out->secret_key) != 0 || strcmp(derived, out->public_key))
        return t2_err_set(T2_EFORMAT, "%s: the public key is not the secret key's", path);
    return 0;
}

int t2_curve_load_public(const char *path, char out[T2_CURVE_KEY_LEN + 1]) {
    char *text;
    int rc = read_small(path, &text);
    if (rc < 0) return rc;
    rc = parse_keys(path, text, out, NULL);
    free(text);
    return rc;
}

int t2_curve_load_client(const char *server_pub, const char *pair, t2_curve_client *out) {
    if (!server_pub)
        return t2_err_set(T2_EINVAL, "CURVE is on but the router's public key is not named "
                          "(security.router_public)");
    if (!pair)
        return t2_err_set(T2_EINVAL, "CURVE is on but this process has no key pair file "
                          "(security.client_key / worker_key / dispatcher_key)");
    int rc = t2_curve_load_public(server_pub, out->server_key);
    if (rc < 0) return rc;
    return t2_curve_load_pair(pair, &out->pair);
}

static int write_file(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return t2_err_set(errno == EEXIST ? T2_EINVAL : T2_EIO, "%s: %s", path,
                          errno == EEXIST ? "exists (not overwritten)" : strerror(errno));
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    if (fchmod(fd, mode) != 0 || w != (ssize_t)n || close(fd) != 0) {
        unlink(path);
        return t2_err_set(T2_EIO, "%s: cannot write it", path);
    }
    return 0;
}

int t2_curve_keygen(const char *name) {
    t2_curve_pair k;
    if (zmq_curve_keypair(k.public_key, k.secret_key) != 0)
        return t2_err_set(T2_EUNSUPPORTED, "this libzmq has no CURVE support");
    char path[4096], text[512];
    if (snprintf(path, sizeof path, "%s.key", name) >= (int)sizeof path)
        return t2_err_set(T2_EINVAL, "%s: name too long", name);
    snprintf(text, sizeof text,
             "# T2 CurveZMQ key pair (t2 keygen): keep this file private\n"
             "public = %s\nsecret = %s\n", k.public_key, k.secret_key);
    int rc = write_file(path, text, 0600);
    memset(text, 0, sizeof text);
    memset(k.secret_key, 0, sizeof k.secret_key);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "%s.pub", name);
    snprintf(text, sizeof text, "# T2 CurveZMQ public key (t2 keygen)\npublic = %s\n",
             k.public_key);
    if ((rc = write_file(path, text, 0644)) < 0) {
        snprintf(path, sizeof path, "%s.key", name);
        unlink(path);
    }
    return rc;
}

/* ---- allowed-key sets ---- */

static int set_add(t2_curve_set *s, const char *key, const char *path) {
    if (!z85_key_ok(key))
        return t2_err_set(T2_EFORMAT, "%s: '%.48s' is not a 40-character Z85 public key", path,
                          key);
    if (s->n >= T2_CURVE_ALLOWED_MAX)
        return t2_err_set(T2_ERANGE, "%s: more than %d allowed keys", path, T2_CURVE_ALLOWED_MAX);
    void *k = realloc(s->keys, (size_t)(s->n + 1) * sizeof *s->keys);
    if (!k) return t2_err_set(T2_ENOMEM, "out of memory");
    s->keys = k;
    memcpy(s->keys[s->n++], key, T2_CURVE_KEY_LEN + 1);
    return 0;
}

static int set_load_file(t2_curve_set *s, const char *path) {
    char *text, line[256];
    int rc = read_small(path, &text);
    if (rc < 0) return rc;
    char *p = text;
    while (rc == 0 && next_line(&p, line, sizeof line)) {
        const char *v = value_of(line, "public");
        if (value_of(line, "secret")) {
            rc = t2_err_set(T2_EFORMAT, "%s: holds a secret key: list public keys only", path);
            break;
        }
        rc = set_add(s, v ? v : line, path);
    }
    free(text);
    return rc;
}

int t2_curve_set_load(t2_curve_set *s, const char *path) {
    struct stat st;
    if (stat(path, &st) < 0) return t2_err_set(T2_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return set_load_file(s, path);
    DIR *d = opendir(path);
    if (!d) return t2_err_set(T2_EIO, "%s: %s", path, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pub")) continue;
        char file[4096];
        if (snprintf(file, sizeof file, "%s/%s", path, e->d_name) >= (int)sizeof file) continue;
        rc = set_load_file(s, file);
    }
    closedir(d);
    return rc;
}

int t2_curve_set_has(const t2_curve_set *s, const unsigned char key[32]) {
    char z[T2_CURVE_KEY_LEN + 1];
    if (!zmq_z85_encode(z, key, 32)) return 0;
    for (int i = 0; i < s->n; i++)
        if (!memcmp(s->keys[i], z, T2_CURVE_KEY_LEN)) return 1;
    return 0;
}

void t2_curve_set_free(t2_curve_set *s) {
    free(s->keys);
    s->keys = NULL;
    s->n = 0;
}
