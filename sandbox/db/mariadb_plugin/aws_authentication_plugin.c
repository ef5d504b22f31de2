/*
 * AWSAuthenticationPlugin for the rdsiam.auth sandbox's MariaDB servers.
 *
 * Same name and client side (mysql_clear_password) as the plugin on Amazon RDS, so the RDS
 * statement works unchanged:
 *   CREATE USER u IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL
 * The password the client sends (an IAM auth token) goes to the sandbox verifier with the login
 * name and this server's target identifier; the verifier decides. REQUIRE SSL on the account
 * refuses plaintext logins, as on RDS. Settings (read-only, from the mariadbd command line):
 *   --awsauthenticationplugin-verify-url=http://127.0.0.1:PORT/_sandbox/verify
 *   --awsauthenticationplugin-target=sbx-mariadb
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include <mysql/plugin_auth.h>

#include "verify_http.h"

static char *verify_url;
static char *target;

static MYSQL_SYSVAR_STR(verify_url, verify_url, PLUGIN_VAR_READONLY | PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_MEMALLOC,
                        "URL of the sandbox token verifier (http://IP:PORT/_sandbox/verify)", NULL, NULL, "");
static MYSQL_SYSVAR_STR(target, target, PLUGIN_VAR_READONLY | PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_MEMALLOC,
                        "RDS target identifier this server stands in for (as in sandbox.json)", NULL, NULL, "");

static struct st_mysql_sys_var *system_variables[] = {MYSQL_SYSVAR(verify_url), MYSQL_SYSVAR(target), NULL};

static int authenticate(MYSQL_PLUGIN_VIO *vio, MYSQL_SERVER_AUTH_INFO *info)
{
  unsigned char *packet;
  char error[256] = "";
  size_t token_len;
  int len, result;

  info->password_used = PASSWORD_USED_YES;
  len = vio->read_packet(vio, &packet); /* asks the client to switch to mysql_clear_password */
  if (len < 0 || !info->user_name) /* the name is known once the client's first packet is in */
    return CR_ERROR;
  token_len = strnlen((const char *)packet, (size_t)len); /* sent NUL-terminated */
  if (!verify_url || !*verify_url || !target || !*target) {
    fprintf(stderr, "AWSAuthenticationPlugin: refusing '%.*s': verify_url and target are not set\n",
            (int)info->user_name_length, info->user_name);
    result = RDSIAM_VERIFY_DENY;
  } else if (info->auth_string_length != 3 || memcmp(info->auth_string, "RDS", 3) != 0) {
    /* RDS accepts only AS 'RDS'; anything else is a mistake in the CREATE USER. */
    fprintf(stderr, "AWSAuthenticationPlugin: refusing '%.*s': the account must be created AS 'RDS'\n",
            (int)info->user_name_length, info->user_name);
    result = RDSIAM_VERIFY_DENY;
  } else {
    result = rdsiam_verify(verify_url, target, info->user_name, info->user_name_length, (const char *)packet,
                           token_len, error, sizeof(error));
    if (result == RDSIAM_VERIFY_ERROR)
      fprintf(stderr, "AWSAuthenticationPlugin: cannot check the login of '%.*s' on %s: %s\n",
              (int)info->user_name_length, info->user_name, target, error);
  }
  explicit_bzero(packet, (size_t)len);
  return result == RDSIAM_VERIFY_ALLOW ? CR_OK : CR_ERROR;
}

static struct st_mysql_auth aws_authentication_handler = {
  MYSQL_AUTHENTICATION_INTERFACE_VERSION,
  "mysql_clear_password", /* the client side RDS uses */
  authenticate,
  NULL, /* no password hashing: the account holds only 'RDS' */
  NULL,
};

maria_declare_plugin(aws_authentication)
{
  MYSQL_AUTHENTICATION_PLUGIN,
  &aws_authentication_handler,
  "AWSAuthenticationPlugin",
  "rdsiam.auth sandbox",
  "IAM database authentication tokens, checked by the rdsiam.auth sandbox verifier",
  PLUGIN_LICENSE_GPL,
  NULL,
  NULL,
  0x0100,
  NULL,
  system_variables,
  "1.0",
  MariaDB_PLUGIN_MATURITY_STABLE
}
maria_declare_plugin_end;
