/* t2_curve.h - CurveZMQ keys for T2's sockets: key files, allowed-key lists, and the roles a
 * key may play.
 *
 * With CURVE on, every connection to the router is encrypted and authenticated: the router
 * holds a key pair (its public key is known to every peer); each peer holds its own pair, and
 * the router admits only public keys listed for a role (clients, workers, dispatchers), then
 * lets each connection do only what its role may (a client key cannot register as a worker).
 * Keys are libzmq's Z85 text (40 characters for 32 bytes).
 *
 * Files (written by `t2 keygen NAME`):
 *   NAME.key  "public = <Z85>" and "secret = <Z85>" lines; mode 0600. A secret key file that
 *             other users can read is refused.
 *   NAME.pub  "public = <Z85>"; share it freely.
 * An allowed-keys list is a file of public keys (lines "public = <Z85>" or a bare "<Z85>";
 * a line starting with '#' is a comment) or a folder whose *.pub files are read.
 */
#ifndef T2_CURVE_H
#define T2_CURVE_H

#include <stddef.h>

#define T2_CURVE_KEY_LEN 40   /* Z85 characters of a key */
#define T2_CURVE_ALLOWED_MAX 4096

typedef struct t2_curve_pair {
    char public_key[T2_CURVE_KEY_LEN + 1];
    char secret_key[T2_CURVE_KEY_LEN + 1];
} t2_curve_pair;

/* What a peer needs to connect: the router's public key and its own pair. */
typedef struct t2_curve_client {
    char server_key[T2_CURVE_KEY_LEN + 1];
    t2_curve_pair pair;
} t2_curve_client;

/* The roles of keys, as the router's ZAP handler names them in a connection's User-Id. */
enum { T2_KEY_NONE = 0, T2_KEY_CLIENT = 1, T2_KEY_WORKER = 2, T2_KEY_DISPATCHER = 3 };
const char *t2_key_role_name(int role);
/* The role a User-Id ("client:KEY", ...) names; T2_KEY_NONE for NULL or anything else. */
int t2_key_role_of(const char *user_id);

/* Write NAME.key (mode 0600; refused if it exists) and NAME.pub for a new key pair. */
int t2_curve_keygen(const char *name);
/* A key pair file: mode checked (no access for group or others), both keys valid Z85, the
 * public key the one the secret key gives. Errors name the file. */
int t2_curve_load_pair(const char *path, t2_curve_pair *out);
/* A public key file (or a pair file: its public key). */
int t2_curve_load_public(const char *path, char out[T2_CURVE_KEY_LEN + 1]);
/* Both: the router's public key file and this peer's pair file (NULL paths: a clear error). */
int t2_curve_load_client(const char *server_pub, const char *pair, t2_curve_client *out);

/* A set of allowed public keys. */
typedef struct t2_curve_set {
    int n;
    char (*keys)[T2_CURVE_KEY_LEN + 1];
} t2_curve_set;
/* Add the keys of a list file or folder (see above). */
int t2_curve_set_load(t2_curve_set *s, const char *path);
/* 1 if the 32-byte binary key is in the set. */
int t2_curve_set_has(const t2_curve_set *s, const unsigned char key[32]);
void t2_curve_set_free(t2_curve_set *s);

#endif
