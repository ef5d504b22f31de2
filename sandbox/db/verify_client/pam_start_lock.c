/*
 * pam_start_lock.so: preloaded before libpam-wrapper into the sandbox's PostgreSQL servers.
 *
 * libpam-wrapper sets itself up in each backend's first pam_start: it picks a /tmp/pam.X
 * directory with an lstat, then a mkdir, and copies the server's PAM service into it. Two
 * backends of different servers doing that at once can pick the same directory, and one then
 * reads the other's service: its login is checked against the other target, or the backend
 * exits. This pam_start holds an exclusive lock on the file named by RDSIAM_PAM_START_LOCK
 * (shared by every sandbox on the machine, since /tmp/pam.X is) around the real one, so those
 * set-ups run one at a time. Without the variable or the file it calls through unlocked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include <security/pam_appl.h>

typedef int (*pam_start_fn)(const char *, const char *, const struct pam_conv *, pam_handle_t **);

int pam_start(const char *service_name, const char *user, const struct pam_conv *conversation, pam_handle_t **pamh)
{
  pam_start_fn next = (pam_start_fn)dlsym(RTLD_NEXT, "pam_start");
  const char *path = getenv("RDSIAM_PAM_START_LOCK");
  int lock = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  int rc;

  if (next == NULL) {
    if (lock >= 0)
      close(lock);
    return PAM_ABORT;
  }
  if (lock >= 0)
    flock(lock, LOCK_EX);
  rc = next(service_name, user, conversation, pamh);
  if (lock >= 0)
    close(lock); /* releases the lock */
  return rc;
}
