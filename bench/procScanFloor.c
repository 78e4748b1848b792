// The floor under bench/procScan.bench.ts's cold scan: the same reads the agent's first scan
// makes (agent/procfs/processScanner.ts with an empty fd cache), in C, with nothing else. For
// every process in /proc: read stat, stat fd/ (its size is the fd count on Linux 6.2+), list
// fd/, readlink every fd, and read fdinfo of each anon_inode:inotify one, counting its
// "inotify wd:" lines; for the processes holding one (a check names them), also status, cgroup
// and the ns/pid link. What it costs is the kernel's work plus the least a program can add:
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

/** Read a whole /proc file into buffer; its length, or -1. */
static ssize_t slurp(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
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
  char path[600], link[256];
  DIR *proc = opendir("/proc");
  if (proc == NULL) return 1;
  struct dirent *p;
  while ((p = readdir(proc)) != NULL) {
    if (p->d_name[0] < '0' || p->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%s/stat", p->d_name);
    if (slurp(path) < 0) continue; // gone mid-scan
    processes++;
    struct stat st;
    snprintf(path, sizeof path, "/proc/%s/fd", p->d_name);
    if (stat(path, &st) < 0) continue;
    DIR *fdDir = opendir(path);
    if (fdDir == NULL) continue;
    struct dirent *f;
    int holder = 0;
    while ((f = readdir(fdDir)) != NULL) {
      if (f->d_name[0] == '.') continue;
      fds++;
      snprintf(path, sizeof path, "/proc/%s/fd/%s", p->d_name, f->d_name);
      ssize_t n = readlink(path, link, sizeof link - 1);
      if (n < 0) continue;
      link[n] = '\0';
      if (strcmp(link, "anon_inode:inotify") != 0) continue;
      instances++;
      holder = 1;
      snprintf(path, sizeof path, "/proc/%s/fdinfo/%s", p->d_name, f->d_name);
      if (slurp(path) < 0) continue;
      for (char *at = buffer; (at = strstr(at, "inotify wd:")) != NULL; at++) watches++;
    }
    closedir(fdDir);
    if (holder) {
      snprintf(path, sizeof path, "/proc/%s/status", p->d_name);
      slurp(path);
      snprintf(path, sizeof path, "/proc/%s/cgroup", p->d_name);
      slurp(path);
      snprintf(path, sizeof path, "/proc/%s/ns/pid", p->d_name);
      if (readlink(path, link, sizeof link - 1) < 0) link[0] = '\0';
    }
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
