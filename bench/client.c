/*
 * Load client for the pool-manager benchmark (bench/run.ts builds and drives it).
 *
 * Protocol: send "HI!" (3 bytes), wait for "OK" (2 bytes), repeat. One request
 * in flight per connection, so a reply is always exactly 2 bytes. With
 * --size B (the sweep's echo protocol), send B bytes and wait for B bytes back.
 *
 *   --mode persistent --connections N --duration S [--warmup S]
 *       open N connections, then every connection loops request -> reply;
 *       measure after the warmup that follows the last connection's opening.
 *       A connection is open once it got a reply to a first request, so the
 *       server really accepted it; at most BATCH are opening at a time, which
 *       keeps a slow-accepting server's listen queue from overflowing (dropped
 *       SYNs/ACKs stall a connect for seconds). Open connections are then parked
 *       until all are open, except for a ping every PARK_PING seconds: a server
 *       with an idle timeout (3 s here) must not close them while the rest
 *       connect, and full-speed traffic would starve the server's accepts.
 *   --mode connect --concurrency C --duration S [--warmup S] [--messages M]
 *       keep C cycles in flight: connect, then M times (default 1) send and
 *       read the reply, then close. One completed cycle is one count of the
 *       rate, its latency the whole cycle's. With M = 1 the kernel's connect
 *       and accept work dominates; with M = 20 a server's cost per connection
 *       (set-up, teardown) and per message both show.
 *   --size B (1..65536, either mode)
 *       echo protocol: each request is B bytes, its reply the same B bytes
 *       (a request larger than the socket's send buffer is written as the
 *       socket drains, while the reply may already be arriving).
 *
 * Single-threaded epoll with non-blocking sockets, so it stays cheap next to a
 * single-threaded Node server. Latencies go into a log-scale histogram.
 * Prints one JSON line on stdout. On stderr it prints "measure-start" and
 * "measure-end" so the runner can sample the server over exactly the window.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256             /* persistent mode: connections opening at once */
#define PARK_PING 1.5         /* seconds between pings of a parked connection */
#define SUB_BITS 5            /* 32 sub-buckets per power of two: ~3% resolution */
#define SUB (1 << SUB_BITS)
#define HIST_SIZE (64 * SUB)
#define MAX_SIZE 65536

enum { ST_FREE, ST_CONNECTING, ST_WAITING, ST_PARKED };
enum { PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DONE };

typedef struct {
  int fd;
  int state;
  int got;         /* reply bytes received so far */
  int sent;        /* request bytes written so far */
  int want_out;    /* EPOLLOUT requested: the request did not fit the send buffer */
  int replies;     /* connect mode: replies received in this cycle */
  uint64_t t0;     /* start of the current request (or connect), ns */
  uint64_t cycle0; /* connect mode: start of the whole cycle, ns */
  uint32_t gen;    /* bumped per socket, so a stale epoll event for a closed fd is ignored */
  int opening;     /* connecting or waiting for the first reply */
} Conn;

static const char *mode = "persistent";
static const char *host = "127.0.0.1";
static int port = 0, nconns = 50, concurrency = 50;
static double duration = 10, warmup = 0, timeout_s = 5;
static int messages = 1;                 /* connect mode: requests per connection */
static int size = 0;                     /* 0: HI!/OK; else the echo protocol's message size */
static int req_len = 3, reply_len = 2;   /* bytes of a request and of its reply */
static char request[MAX_SIZE] = "HI!";
static char scratch[MAX_SIZE];

static int ep;
static Conn *conns;
static int nslots;
static int phase = PH_CONNECT;
static struct sockaddr_in addr;
static uint64_t hist[HIST_SIZE];
static uint64_t completed, errors, connect_errors, timeouts, resets, connected;
static int opening_now, opened;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Log-linear bucket: values below SUB are exact; above, SUB sub-buckets per power of two. */
static int bucket_of(uint64_t v) {
  if (v < SUB) return (int)v;
  int e = 63 - __builtin_clzll(v);
  return (e - SUB_BITS + 1) * SUB + (int)((v >> (e - SUB_BITS)) & (SUB - 1));
}

static uint64_t bucket_value(int b) { /* upper bound of the bucket, so percentiles are not flattering */
  if (b < SUB) return (uint64_t)b;
  int e = b / SUB + SUB_BITS - 1;
  uint64_t lo = (1ull << e) + ((uint64_t)(b % SUB) << (e - SUB_BITS));
  return lo + (1ull << (e - SUB_BITS)) - 1;
}

static uint64_t percentile(double p) {
  if (completed == 0) return 0;
  uint64_t want = (uint64_t)(p * (double)completed + 0.5), seen = 0;
  if (want < 1) want = 1;
  for (int b = 0; b < HIST_SIZE; b++) {
    seen += hist[b];
    if (seen >= want) return bucket_value(b);
  }
  return 0;
}

static void record(uint64_t start) {
  if (phase != PH_MEASURE) return;
  uint64_t us = (now_ns() - start) / 1000;
  int b = bucket_of(us);
  hist[b < HIST_SIZE ? b : HIST_SIZE - 1]++;
  completed++;
}

static void drop(Conn *c) {
  if (c->fd >= 0) close(c->fd); /* close also removes it from the epoll set */
  if (c->opening) opening_now--;
  c->opening = 0;
  c->fd = -1;
  c->state = ST_FREE;
  c->got = 0;
  c->want_out = 0;
}

static int start_connect(Conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  c->gen++;
  struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = ((uint64_t)c->gen << 32) | (uint64_t)(c - conns)};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  c->fd = fd;
  c->state = ST_CONNECTING;
  c->got = 0;
  c->replies = 0;
  c->t0 = c->cycle0 = now_ns();
  c->opening = 1;
  opening_now++;
  return 0;
}

static void watch(Conn *c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)c->gen << 32) | (uint64_t)(c - conns)};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what the socket takes of the request; the rest when it is writable again. */
static void send_more(Conn *c) {
  while (c->sent < req_len) {
    ssize_t n = write(c->fd, request + c->sent, (size_t)(req_len - c->sent));
    if (n > 0) {
      c->sent += (int)n;
      continue;
    }
    if (n < 0 && errno == EAGAIN) { /* send buffer full: go on when it drains */
      watch(c, EPOLLIN | EPOLLOUT);
      c->want_out = 1;
      return;
    }
    errors++;
    resets++;
    drop(c);
    return;
  }
  if (c->want_out) {
    watch(c, EPOLLIN);
    c->want_out = 0;
  }
}

static void send_request(Conn *c) {
  c->t0 = now_ns();
  c->got = 0;
  c->sent = 0;
  c->state = ST_WAITING;
  send_more(c); /* HI! into an empty send buffer: only fails if the socket is dead */
}

static int is_connect_mode(void) { return strcmp(mode, "connect") == 0; }

/* Connect mode: begin a new cycle in this slot. Synchronous failures (e.g. no free
 * local port) are counted and retried on the next timer tick instead of spinning. */
static void start_cycle(Conn *c) {
  if (phase == PH_DONE) return;
  if (start_connect(c) < 0) {
    errors++;
    connect_errors++;
  }
}

static void on_connected(Conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    errors++;
    connect_errors++;
    drop(c);
    if (is_connect_mode()) start_cycle(c);
    return;
  }
  watch(c, EPOLLIN);
  if (!is_connect_mode()) connected++;
  send_request(c);
  if (c->state == ST_FREE && is_connect_mode()) start_cycle(c);
}

static void on_readable(Conn *c) {
  ssize_t n = read(c->fd, scratch, sizeof scratch);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0 || c->state != ST_WAITING) { /* closed or reset by the server, or an unsolicited byte */
    errors++;
    resets++;
    drop(c);
    if (is_connect_mode()) start_cycle(c);
    else if (phase != PH_DONE && start_connect(c) < 0) errors++, connect_errors++;
    return;
  }
  c->got += (int)n;
  if (c->got < reply_len) return;
  if (c->opening) {
    c->opening = 0;
    opening_now--;
  }
  if (is_connect_mode()) {
    if (++c->replies < messages) { /* the next request of this cycle, on the same connection */
      send_request(c);
      if (c->state == ST_FREE) start_cycle(c);
      return;
    }
    record(c->cycle0);
    drop(c);
    start_cycle(c);
  } else {
    record(c->t0);
    if (phase == PH_CONNECT) {
      c->state = ST_PARKED;
      c->t0 = now_ns();
      return;
    }
    if (phase != PH_DONE) send_request(c);
    if (c->state == ST_FREE && phase != PH_DONE && start_connect(c) < 0) errors++, connect_errors++;
  }
}

/* Requests (or connects) with no answer within timeout_s are errors. */
static void check_timeouts(uint64_t now) {
  uint64_t limit = (uint64_t)(timeout_s * 1e9);
  for (int i = 0; i < nslots; i++) {
    Conn *c = &conns[i];
    if (c->state == ST_FREE && is_connect_mode() && phase != PH_CONNECT) start_cycle(c);
    if (c->state == ST_PARKED && phase == PH_CONNECT && c->t0 + (uint64_t)(PARK_PING * 1e9) < now) send_request(c);
    /* written as t0 + limit > now: a request sent just above has t0 > now */
    if ((c->state != ST_WAITING && c->state != ST_CONNECTING) || c->t0 + limit > now) continue;
    int was_connecting = c->state == ST_CONNECTING;
    errors++;
    timeouts++;
    if (was_connecting) connect_errors++;
    drop(c);
    if (is_connect_mode()) start_cycle(c);
    else if (!was_connecting && start_connect(c) < 0) errors++, connect_errors++;
  }
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: client --port P [--host 127.0.0.1] [--mode persistent|connect] [--connections N]\n"
          "              [--concurrency C] [--messages M] [--duration S] [--warmup S] [--timeout S] [--size B]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) usage();
    if (!strcmp(k, "--mode")) mode = v;
    else if (!strcmp(k, "--host")) host = v;
    else if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--connections")) nconns = atoi(v);
    else if (!strcmp(k, "--concurrency")) concurrency = atoi(v);
    else if (!strcmp(k, "--duration")) duration = atof(v);
    else if (!strcmp(k, "--warmup")) warmup = atof(v);
    else if (!strcmp(k, "--timeout")) timeout_s = atof(v);
    else if (!strcmp(k, "--size")) size = atoi(v);
    else if (!strcmp(k, "--messages")) messages = atoi(v);
    else usage();
    i++;
  }
  if (port <= 0 || (strcmp(mode, "persistent") && strcmp(mode, "connect")) || size < 0 || size > MAX_SIZE ||
      messages < 1)
    usage();
  if (size > 0) {
    req_len = reply_len = size;
    memset(request, 'x', (size_t)size);
  }
  raise_nofile();
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) usage();

  nslots = is_connect_mode() ? concurrency : nconns;
  conns = calloc((size_t)nslots, sizeof *conns);
  for (int i = 0; i < nslots; i++) conns[i].fd = -1;
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event events[512];

  uint64_t t_begin = now_ns(), t_phase = t_begin, t_measure = 0, t_end = 0, last_tick = t_begin;
  double cpu_start = 0, cpu_end = 0;
  if (is_connect_mode()) {
    phase = PH_WARMUP;
    for (int i = 0; i < nslots; i++) start_cycle(&conns[i]);
  }

  while (phase != PH_DONE) {
    /* Persistent mode: keep at most BATCH connections opening until all N were tried. */
    while (phase == PH_CONNECT && opened < nslots && opening_now < BATCH) {
      if (start_connect(&conns[opened]) < 0) errors++, connect_errors++;
      opened++;
    }
    int n = epoll_wait(ep, events, 512, 10);
    for (int i = 0; i < n; i++) {
      Conn *c = &conns[events[i].data.u64 & 0xffffffffu];
      if (c->fd < 0 || c->gen != (uint32_t)(events[i].data.u64 >> 32)) continue; /* dropped earlier in this batch */
      if (c->state == ST_CONNECTING) on_connected(c);
      else {
        if ((events[i].events & EPOLLOUT) && c->sent < req_len) send_more(c);
        if (c->fd >= 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c);
      }
    }
    uint64_t now = now_ns();
    if (now - last_tick > 100000000ull) {
      last_tick = now;
      check_timeouts(now);
    }
    if (phase == PH_CONNECT && opened == nslots && opening_now == 0) {
      phase = PH_WARMUP;
      t_phase = now;
      for (int i = 0; i < nslots; i++)
        if (conns[i].state == ST_PARKED) send_request(&conns[i]);
    }
    if (phase == PH_WARMUP && now - t_phase >= (uint64_t)(warmup * 1e9)) {
      phase = PH_MEASURE;
      t_measure = now;
      cpu_start = cpu_seconds();
      fprintf(stderr, "measure-start\n");
    }
    if (phase == PH_MEASURE && now - t_measure >= (uint64_t)(duration * 1e9)) {
      t_end = now;
      cpu_end = cpu_seconds();
      phase = PH_DONE;
      fprintf(stderr, "measure-end\n");
    }
  }

  double secs = (double)(t_end - t_measure) / 1e9;
  printf("{\"mode\":\"%s\",\"messages\":%d,\"size\":%d,\"slots\":%d,\"connected\":%llu,\"completed\":%llu,"
         "\"errors\":%llu,\"connect_errors\":%llu,\"resets\":%llu,\"timeouts\":%llu,\"connect_s\":%.3f,"
         "\"duration_s\":%.3f,\"rate\":%.1f,\"p50_us\":%llu,\"p99_us\":%llu,\"max_us\":%llu,\"cpu_s\":%.3f}\n",
         mode, messages, size, nslots, (unsigned long long)connected, (unsigned long long)completed,
         (unsigned long long)errors, (unsigned long long)connect_errors, (unsigned long long)resets,
         (unsigned long long)timeouts, is_connect_mode() ? 0.0 : (double)(t_phase - t_begin) / 1e9, secs,
         (double)completed / secs, (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.99),
         (unsigned long long)percentile(1.0), cpu_end - cpu_start);
  return 0;
}
