/* One call to the sandbox's IAM token verifier, shared by the MariaDB plugin and the PAM module. */
#ifndef RDSIAM_VERIFY_HTTP_H
#define RDSIAM_VERIFY_HTTP_H

#include <stddef.h>

#define RDSIAM_VERIFY_ALLOW 1
#define RDSIAM_VERIFY_DENY 0
#define RDSIAM_VERIFY_ERROR (-1)

/* Longest token accepted: a token signed with a long STS session token stays well below it. */
#define RDSIAM_MAX_TOKEN 16384

/*
 * POST {"target", "user", "token"} to url (http://IP:PORT/PATH, numeric loopback address) and
 * return RDSIAM_VERIFY_ALLOW (200 with "allow": true), RDSIAM_VERIFY_DENY (403) or
 * RDSIAM_VERIFY_ERROR (anything else). On error, why (never the token) goes to error/error_size.
 */
int rdsiam_verify(const char *url, const char *target, const char *user, size_t user_len,
                  const char *token, size_t token_len, char *error, size_t error_size);

#endif
