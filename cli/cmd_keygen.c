/* t2 keygen - CurveZMQ key pairs for a secured deployment (router/t2_curve.h). */
#include "cli.h"

#include "base/t2_err.h"
#include "t2_curve.h"

#include <stdio.h>
#include <string.h>

static const char keygen_help[] =
    "usage: t2 keygen NAME...\n\n"
    "Write a CurveZMQ key pair per NAME: NAME.key (public and secret key, mode 0600: keep it\n"
    "private) and NAME.pub (the public key: share it). Existing files are not overwritten.\n"
    "A secured deployment (deploy/t2.cfg, section security) names the router's pair, each\n"
    "role's pair, and the public keys each role admits, e.g.:\n"
    "  t2 keygen keys/router keys/worker keys/dispatcher keys/client\n";

int t2_cmd_keygen(int argc, char **argv) {
    if (argc < 2) {
        fputs(keygen_help, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(keygen_help, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') return cli_usage_error("keygen", "unknown option %s", argv[i]);
        if (t2_curve_keygen(argv[i]) < 0) return cli_fail("keygen");
        printf("wrote %s.key (secret, mode 0600) and %s.pub\n", argv[i], argv[i]);
    }
    return 0;
}
