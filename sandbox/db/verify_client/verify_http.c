/*
 * One HTTP/1.0 POST to the sandbox verifier on the moto server (loopback only).
 *
 * Plain sockets rather than a library: it runs inside mariadbd (the plugin) and inside each
 * PostgreSQL backend (the PAM module), so it must be small, fast and free of dependencies.
 * The token is a secret: it is only ever written to the verifier's socket, and the buffers that
 * held it are wiped before they are freed.
 */
#define _GNU_SOURCE
#include "verify_http.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TIMEOUT_SECONDS 10
#define MAX_RESPONSE 8192

static void set_error(char *error, size_t size, const char *what, int errnum)
{
  if (error && size)
    snprintf(error, size, "%s%s%s", what, errnum ? ": " : "", errnum ? strerror(errnum) : "");
}

/* Append s as a JSON string (quotes included); out has room for 6 bytes per input byte + 2. */
static size_t json_string(char *out, const char *s, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  out[n++] = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[c >> 4];
      out[n + 5] = hex[c & 15];
      n += 6;
    } else {
      out[n++] = (char)c;
    }
  }
  out[n++] = '"';
  return n;
}

/* Split http://HOST:PORT/PATH; HOST may be [v6]. Returns 0 on success. */
static int parse_url(const char *url, char *host, size_t host_size, char *port, size_t port_size, const char **path)
{
  const char *p, *end, *colon;
  size_t len;
  if (strncmp(url, "http://", 7) != 0)
    return -1;
  p = url + 7;
  *path = strchr(p, '/');
  if (!*path)
    return -1;
  if (*p == '[') {
    end = strchr(p, ']');
    if (!end || end > *path || end[1] != ':')
      return -1;
    len = (size_t)(end - p - 1);
    p++;
    colon = end + 1;
  } else {
    colon = memchr(p, ':', (size_t)(*path - p));
    if (!colon)
      return -1;
    len = (size_t)(colon - p);
  }
  if (len == 0 || len >= host_size || (size_t)(*path - colon - 1) >= port_size || *path - colon - 1 == 0)
    return -1;
  memcpy(host, p, len);
  host[len] = '\0';
  memcpy(port, colon + 1, (size_t)(*path - colon - 1));
  port[*path - colon - 1] = '\0';
  return 0;
}

static int connect_numeric(const char *host, const char *port, char *error, size_t error_size)
{
  struct addrinfo hints, *found;
  struct timeval timeout = {TIMEOUT_SECONDS, 0};
  int fd, rc;
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV; /* never a DNS lookup */
  rc = getaddrinfo(host, port, &hints, &found);
  if (rc != 0) {
    set_error(error, error_size, "verify URL has no numeric address and port", 0);
    return -1;
  }
  fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
      set_error(error, error_size, "cannot reach the verifier", errno);
      close(fd);
      fd = -1;
    }
  } else {
    set_error(error, error_size, "socket", errno);
  }
  freeaddrinfo(found);
  return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
  while (len > 0) {
    ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR)
      continue;
    if (sent <= 0)
      return -1;
    data += sent;
    len -= (size_t)sent;
  }
  return 0;
}

/* Read until the verifier closes the connection (HTTP/1.0); returns the length or -1. */
static ssize_t read_response(int fd, char *buf, size_t size)
{
  size_t got = 0;
  while (got < size - 1) {
    ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  buf[got] = '\0';
  return (ssize_t)got;
}

/* 200 must also say "allow": true, so a proxy or an unrelated 200 never lets anyone in. */
static int interpret(const char *response, char *error, size_t error_size)
{
  const char *body, *allow;
  int status;
  if (sscanf(response, "HTTP/1.%*d %d", &status) != 1) {
    set_error(error, error_size, "the verifier's answer is not HTTP", 0);
    return RDSIAM_VERIFY_ERROR;
  }
  if (status == 403)
    return RDSIAM_VERIFY_DENY;
  body = strstr(response, "\r\n\r\n");
  allow = body ? strstr(body, "\"allow\"") : NULL;
  if (status == 200 && allow) {
    allow += strlen("\"allow\"");
    allow += strspn(allow, " \t\r\n:");
    if (strncmp(allow, "true", 4) == 0)
      return RDSIAM_VERIFY_ALLOW;
    return RDSIAM_VERIFY_DENY;
  }
  if (error && error_size)
    snprintf(error, error_size, "the verifier answered HTTP %d", status);
  return RDSIAM_VERIFY_ERROR;
}

int rdsiam_verify(const char *url, const char *target, const char *user, size_t user_len,
                  const char *token, size_t token_len, char *error, size_t error_size)
{
  char host[64], port[8], header[512], response[MAX_RESPONSE];
  const char *path;
  size_t target_len = strlen(target), body_size, body_len = 0;
  char *body;
  int fd, header_len, result = RDSIAM_VERIFY_ERROR;

  if (parse_url(url, host, sizeof(host), port, sizeof(port), &path) != 0) {
    set_error(error, error_size, "verify URL is not http://IP:PORT/PATH", 0);
    return RDSIAM_VERIFY_ERROR;
  }
  if (token_len == 0 || token_len > RDSIAM_MAX_TOKEN)
    return RDSIAM_VERIFY_DENY; /* nothing a verifier could accept */
  body_size = 6 * (target_len + user_len + token_len) + 64;
  body = malloc(body_size);
  if (!body) {
    set_error(error, error_size, "out of memory", 0);
    return RDSIAM_VERIFY_ERROR;
  }
  body_len += (size_t)sprintf(body, "{\"target\": ");
  body_len += json_string(body + body_len, target, target_len);
  body_len += (size_t)sprintf(body + body_len, ", \"user\": ");
  body_len += json_string(body + body_len, user, user_len);
  body_len += (size_t)sprintf(body + body_len, ", \"token\": ");
  body_len += json_string(body + body_len, token, token_len);
  body[body_len++] = '}';

  header_len = snprintf(header, sizeof(header),
                        "POST %s HTTP/1.0\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n", path, host, port, body_len);
  fd = connect_numeric(host, port, error, error_size);
  if (fd >= 0) {
    if (header_len > 0 && (size_t)header_len < sizeof(header) && send_all(fd, header, (size_t)header_len) == 0 &&
        send_all(fd, body, body_len) == 0 && read_response(fd, response, sizeof(response)) > 0)
      result = interpret(response, error, error_size);
    else
      set_error(error, error_size, "talking to the verifier failed", errno);
    close(fd);
  }
  explicit_bzero(body, body_size);
  free(body);
  return result;
}
