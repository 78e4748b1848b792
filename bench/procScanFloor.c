// The floor under bench/procScan.bench.ts's cold scan: the same reads the agent's first scan
// makes (agent/procfs/processScanner.ts remembering nothing yet), in C, with nothing else. For
// every process in /proc: read stat, stat fd/ (its size is the fd count on Linux 6.2+), list
// fd/, readlink every fd, and read fdinfo of each anon_inode:inotify one, counting its
// "inotify wd:" lines; then its status, cgroup and the ns/pid link.
// Files are opened relative to a descriptor of /proc/<pid> (openat, readlinkat), which spares
// the kernel the lookup of /proc/<pid> on every file; Node has no such calls, so the agent pays
// that lookup each time. What this costs is the kernel's work plus the least a program can add:
// no scan of this machine's /proc can cost less.
//
// Prints one line: "<processes> <fds> <inotify instances> <watches> <user ms> <sys ms> <wall ms>".
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char buffer[65536];

/** Read a whole file under directory fd `at` into buffer; its length, or -1. */
static ssize_t slurp(int at, const char *name) {
  int fd = openat(at, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t total = 0, n;
  while ((n = read(fd, buffer + total, sizeof buffer - 1 - total)) > 0) total += n;
  close(fd);
  buffer[total] = '\0';
  return total;
}

static double ms(struct timeval tv) { return tv.tv_sec * 1e3 + tv.tv_usec / 1e3; }

int main(void) {
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long processes = 0, fds = 0, instances = 0, watches = 0;
  char name[300], link[256];
  DIR *proc = opendir("/proc");
  if (proc == NULL) return 1;
  struct dirent *p;
  while ((p = readdir(proc)) != NULL) {
    if (p->d_name[0] < '0' || p->d_name[0] > '9') continue;
    int pid = openat(dirfd(proc), p->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pid < 0) continue; // gone mid-scan
    if (slurp(pid, "stat") < 0) {
      close(pid);
      continue;
    }
    processes++;
    struct stat st;
    int fdFd = fstatat(pid, "fd", &st, 0) < 0 ? -1 : openat(pid, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *fdDir = fdFd < 0 ? NULL : fdopendir(fdFd);
    if (fdDir != NULL) {
      struct dirent *f;
      while ((f = readdir(fdDir)) != NULL) {
        if (f->d_name[0] == '.') continue;
        fds++;
        ssize_t n = readlinkat(dirfd(fdDir), f->d_name, link, sizeof link - 1);
        if (n < 0) continue;
        link[n] = '\0';
        if (strcmp(link, "anon_inode:inotify") != 0) continue;
        instances++;
        snprintf(name, sizeof name, "fdinfo/%s", f->d_name);
        if (slurp(pid, name) < 0) continue;
        for (char *at = buffer; (at = strstr(at, "inotify wd:")) != NULL; at++) watches++;
      }
      closedir(fdDir);
    }
    slurp(pid, "status");
    slurp(pid, "cgroup");
    if (readlinkat(pid, "ns/pid", link, sizeof link - 1) < 0) link[0] = '\0';
    close(pid);
  }
  closedir(proc);
  clock_gettime(CLOCK_MONOTONIC, &end);
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  printf("%ld %ld %ld %ld %.1f %.1f %.1f\n", processes, fds, instances, watches,
         ms(usage.ru_utime), ms(usage.ru_stime),
         (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6);
  return 0;
}
