/*
 * pam_rdsiam_verify.so: the PAM module the sandbox's PostgreSQL servers use for rds_iam logins.
 *
 *   auth    required /path/pam_rdsiam_verify.so url=http://127.0.0.1:PORT/_sandbox/verify target=sbx-postgres
 *                                               [error_log=/path/verify_errors.log]
 *   account required /path/pam_rdsiam_verify.so
 *
 * It asks PostgreSQL for the password the client sent (the IAM token) and hands it, with the
 * login name, to the sandbox verifier. Not pam_exec with expose_authtok: pam_exec cuts the
 * password at PAM_MAX_RESP_SIZE (512 bytes), and a token signed with temporary credentials
 * carries the session token, so it is often longer. error_log gets only what the verifier cannot
 * log itself (it was unreachable, a bad answer), never the token.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "verify_http.h"

static const char *option(int argc, const char **argv, const char *name)
{
  size_t len = strlen(name);
  for (int i = 0; i < argc; i++)
    if (strncmp(argv[i], name, len) == 0 && argv[i][len] == '=')
      return argv[i] + len + 1;
  return NULL;
}

static void log_error(const char *path, const char *user, const char *target, const char *what)
{
  char stamp[32];
  time_t now = time(NULL);
  FILE *log;
  int fd;
  if (!path)
    return;
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  log = fdopen(fd, "a");
  if (!log) {
    close(fd);
    return;
  }
  strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", gmtime(&now));
  fprintf(log, "%s UTC pam_rdsiam_verify: %s on %s: %s\n", stamp, user, target ? target : "?", what);
  fclose(log);
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
  const char *url = option(argc, argv, "url"), *target = option(argc, argv, "target");
  const char *error_log = option(argc, argv, "error_log");
  const char *user = NULL, *token;
  const void *item = NULL;
  char *prompted = NULL, error[256] = "";
  int result;
  (void)flags;

  if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user)
    return PAM_USER_UNKNOWN;
  if (!url || !target) {
    log_error(error_log, user, target, "the PAM service needs url= and target=");
    return PAM_SERVICE_ERR;
  }
  if (pam_get_item(pamh, PAM_AUTHTOK, &item) != PAM_SUCCESS)
    return PAM_AUTH_ERR;
  token = item;
  if (!token) {
    result = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &prompted, "Password: ");
    if (result != PAM_SUCCESS || !prompted) {
      free(prompted);
      return result == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_AUTH_ERR;
    }
    token = prompted;
  }
  result = rdsiam_verify(url, target, user, strlen(user), token, strlen(token), error, sizeof(error));
  if (prompted) {
    explicit_bzero(prompted, strlen(prompted));
    free(prompted);
  }
  if (result == RDSIAM_VERIFY_ERROR)
    log_error(error_log, user, target, error);
  return result == RDSIAM_VERIFY_ALLOW ? PAM_SUCCESS : PAM_AUTH_ERR;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
  (void)pamh, (void)flags, (void)argc, (void)argv;
  return PAM_SUCCESS;
}

/* The verifier already decided; there is no account state to check. */
PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
  (void)pamh, (void)flags, (void)argc, (void)argv;
  return PAM_SUCCESS;
}
