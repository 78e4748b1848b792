// Load generator for bench/procScan.bench.ts: `procLoad N FDS` forks N children that each hold
// exactly FDS open fds and sleep. Every 10th child's first fd is an inotify instance watching
// /tmp and /etc (when fs.inotify.max_user_instances allows; otherwise /dev/null, so the fd count
// stays FDS); every other fd is /dev/null. Prints "ready" once every child holds its fds, then
// waits for stdin to close, kills and reaps the children and exits. Children die with it anyway
// (PR_SET_PDEATHSIG).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_INHERITED_FD 1024
// The child's readiness pipe end is moved here, above any fd it opens, and closed after use.
#define READY_FD (MAX_INHERITED_FD - 1)

static void child(int index, int fds, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0); // the parent died before PDEATHSIG was set
  for (int fd = 0; fd < MAX_INHERITED_FD; fd++)
    if (fd != READY_FD) close(fd);
  int opened = 0;
  if (index % 10 == 0) {
    int in = inotify_init1(IN_CLOEXEC);
    if (in >= 0) {
      inotify_add_watch(in, "/tmp", IN_CREATE | IN_DELETE);
      inotify_add_watch(in, "/etc", IN_CREATE | IN_DELETE);
      opened++;
    }
  }
  for (; opened < fds; opened++)
    if (open("/dev/null", O_RDONLY) < 0) _exit(1);
  char byte = 1;
  if (write(READY_FD, &byte, 1) != 1) _exit(1);
  close(READY_FD);
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s N FDS\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[1]);
  int fds = atoi(argv[2]);
  if (n <= 0 || fds <= 0 || fds >= READY_FD) {
    fprintf(stderr, "bad N or FDS\n");
    return 2;
  }
  pid_t *pids = calloc((size_t)n, sizeof *pids);
  int ready[2];
  if (pids == NULL || pipe(ready) != 0) {
    perror("setup");
    return 1;
  }
  if (dup2(ready[1], READY_FD) < 0) {
    perror("dup2");
    return 1;
  }
  close(ready[1]);
  pid_t self = getpid();
  int started = 0;
  for (; started < n; started++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      break;
    }
    if (pid == 0) child(started, fds, self);
    pids[started] = pid;
  }
  // Every child holds the write end now: EOF means every one wrote or died.
  close(READY_FD);
  int got = 0;
  char buffer[4096];
  while (started == n && got < n) {
    ssize_t r = read(ready[0], buffer, sizeof buffer);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (int)r;
  }
  close(ready[0]);
  int status = 0;
  if (got == n) {
    printf("ready\n");
    fflush(stdout);
    for (;;) {
      ssize_t r = read(STDIN_FILENO, buffer, sizeof buffer);
      if (r > 0 || (r < 0 && errno == EINTR)) continue;
      break;
    }
  } else {
    fprintf(stderr, "only %d of %d children ready\n", got, n);
    status = 1;
  }
  for (int i = 0; i < started; i++) kill(pids[i], SIGKILL);
  for (int i = 0; i < started; i++)
    while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR) {
    }
  return status;
}
