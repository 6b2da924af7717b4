// fdpass: the hand-off transport's native half (Linux). Node-API only, so one build loads in
// every Node >= 20.
//
// Primary:  listen()  an accept4 loop on the listening socket: one JS call per wake-up with a
//                     batch of descriptors, instead of one per connection.
//           refuse()  "server busy" without a net.Socket: the answer, then a lingering close.
//           channel() per worker a SOCK_SEQPACKET pair. send() passes up to 253 descriptors
//                     per sendmsg (SCM_RIGHTS) with their accept times as the payload; on
//                     EAGAIN it stops, in order, and calls back when writable. The primary keeps
//                     the worker's end too: when the worker dies, reclaim() reads back what it
//                     never received, so those connections are handed on rather than lost.
// Worker:   receiver() drains the channel (MSG_CMSG_CLOEXEC) until EAGAIN, one JS call per
//                     wake-up; report() tells the primary how many connections closed (the
//                     slots to free), batched, never lost on EAGAIN. give() hands an idle
//                     connection back (a reload's drain): the primary hands it to another worker,
//                     takeMoved() reads it there. Its slot goes with it; it is never reported closed.
// Metrics:  listenQueue() the accept queues of the listening sockets on a port, from sock_diag
//                     (as `ss -ltn`): /proc/net/tcp would walk the whole established hash first.
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <netinet/tcp.h>

#define MAX_FDS_PER_MSG 253 /* SCM_MAX_FD */
#define ACCEPT_BATCH 1024
#define RECV_BATCH 4096
/* A worker's message to the primary: a close report is one uint32 (the count). Otherwise a
   header of two uint32s, a tag and a count n, then n doubles (client keys): MOVE_TAG, connections
   handed back (their descriptors in SCM_RIGHTS); KEYS_TAG, closes told by client key. */
#define MOVE_TAG 0xFFFFFFFFu
#define KEYS_TAG 0xFFFFFFFEu
#define KEYS_PER_MSG 512

typedef struct {
  uint32_t tag, n;
} msg_head;

/* A growable array of doubles. */
typedef struct {
  double* v;
  size_t n, cap;
} dbuf;

static int dbuf_push(dbuf* b, const double* x, size_t k) {
  if (b->n + k > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (b->n + k > cap) cap *= 2;
    double* grown = realloc(b->v, cap * sizeof(double));
    if (!grown) return -1;
    b->v = grown;
    b->cap = cap;
  }
  memcpy(b->v + b->n, x, k * sizeof(double));
  b->n += k;
  return 0;
}

#define CHECK(call)                                                         \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      napi_throw_error(env, NULL, "fdpass: " #call " failed");               \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

typedef struct {
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
} js_cb;

static int cb_init(napi_env env, napi_value fn, const char* name, js_cb* out) {
  napi_value res;
  out->env = env;
  if (napi_create_reference(env, fn, 1, &out->cb) != napi_ok) return -1;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &res) != napi_ok) return -1;
  return napi_async_init(env, NULL, res, &out->ctx) == napi_ok ? 0 : -1;
}

static void cb_free(js_cb* c) {
  if (c->cb) napi_delete_reference(c->env, c->cb);
  if (c->ctx) napi_async_destroy(c->env, c->ctx);
  c->cb = NULL;
  c->ctx = NULL;
}

// Calls the JS callback from a libuv callback, as MakeCallback does (ticks and microtasks run
// after it); an exception goes to 'uncaughtException' like any other.
static void cb_call(js_cb* c, size_t argc, napi_value* argv) {
  napi_env env = c->env;
  napi_value fn, recv, result;
  napi_get_reference_value(env, c->cb, &fn);
  napi_get_global(env, &recv);
  if (napi_make_callback(env, c->ctx, recv, fn, argc, argv, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
}

// Calls back into JS with the arguments built inside a handle scope of their own (from a libuv
// callback there is none). `env` in the arguments is the callback's.
#define CALL_JS(cb, ...)                                       \
  do {                                                        \
    napi_env env = (cb)->env;                                 \
    napi_handle_scope scope_;                                 \
    napi_open_handle_scope(env, &scope_);                     \
    napi_value argv_[] = {__VA_ARGS__};                       \
    cb_call((cb), sizeof argv_ / sizeof argv_[0], argv_);     \
    napi_close_handle_scope(env, scope_);                     \
  } while (0)

static napi_value int32_array(napi_env env, const int* src, size_t n) {
  void* data;
  napi_value ab, ta;
  if (napi_create_arraybuffer(env, n * sizeof(int32_t), &data, &ab) != napi_ok) return NULL;
  if (n) memcpy(data, src, n * sizeof(int32_t));
  if (napi_create_typedarray(env, napi_int32_array, n, ab, 0, &ta) != napi_ok) return NULL;
  return ta;
}

static napi_value float64_array(napi_env env, const double* src, size_t n) {
  void* data;
  napi_value ab, ta;
  if (napi_create_arraybuffer(env, n * sizeof(double), &data, &ab) != napi_ok) return NULL;
  if (n) memcpy(data, src, n * sizeof(double));
  if (napi_create_typedarray(env, napi_float64_array, n, ab, 0, &ta) != napi_ok) return NULL;
  return ta;
}

// The arrays of a batch, handed to JS on every wake-up: each over a buffer made once and kept (a
// reference), so a call makes only the typed array, where a new ArrayBuffer costs a backing store
// each time (about 0.3 µs, freed by the GC). Valid during the call: a caller copies what it keeps.
// A buffer JS detached (transferred) is replaced, never written.
typedef struct {
  napi_ref ref;
  size_t bytes;
} pinned_t;

static void pinned_free(napi_env env, pinned_t* p) {
  if (p->ref) napi_delete_reference(env, p->ref);
  p->ref = NULL;
}

static napi_value pinned_view(napi_env env, pinned_t* p, napi_typedarray_type type, const void* src, size_t n, size_t elem) {
  napi_value ab = NULL, ta;
  void* data = NULL;
  size_t len = 0;
  // A detached buffer reads as no data and length 0.
  if (!p->ref || napi_get_reference_value(env, p->ref, &ab) != napi_ok || !ab || napi_get_arraybuffer_info(env, ab, &data, &len) != napi_ok || len < p->bytes) {
    pinned_free(env, p);
    if (napi_create_arraybuffer(env, p->bytes, &data, &ab) != napi_ok || napi_create_reference(env, ab, 1, &p->ref) != napi_ok) return NULL;
  }
  if (n) memcpy(data, src, n * elem);
  if (napi_create_typedarray(env, type, n, ab, 0, &ta) != napi_ok) return NULL;
  return ta;
}

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "fdpass: %s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static void* get_ptr(napi_env env, napi_value v) {
  void* p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) napi_throw_type_error(env, NULL, "fdpass: not a live handle");
  return p;
}

// Reads `argc` arguments into argv; returns the handle in argv[0], or NULL with an exception pending.
static void* handle_args(napi_env env, napi_callback_info info, size_t argc, napi_value* argv) {
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "fdpass: arguments");
    return NULL;
  }
  return get_ptr(env, argv[0]);
}

// The first argument as an int32 (a descriptor, a port): false with an exception pending.
static bool int_arg(napi_env env, napi_callback_info info, int32_t* v) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && napi_get_value_int32(env, argv[0], v) == napi_ok) return true;
  napi_throw_error(env, NULL, "fdpass: the first argument must be a number");
  return false;
}

// Refuses a connection with a TCP reset: the caller has no descriptor to answer it with.
static void close_with_reset(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

/* ---------------------------------------------------------------- client keys */

// A connection's client, as a number (admission/client.ts computes the same from an address's text):
// IPv4 (and IPv4-mapped IPv6) the address's first p4 bits, exactly; IPv6 its first p6 bits,
// hashed (FNV-1a, 64 bit) into 52 bits above 2^32, so the two never meet and every key is exact
// in a double. 0 for anything else.
static double client_key(const struct sockaddr_storage* ss, int p4, int p6) {
  const uint8_t* b;
  int bits;
  if (ss->ss_family == AF_INET) {
    b = (const uint8_t*)&((const struct sockaddr_in*)ss)->sin_addr;
    bits = p4;
  } else if (ss->ss_family == AF_INET6) {
    const uint8_t* a = ((const struct sockaddr_in6*)ss)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) {
      b = a + 12;
      bits = p4;
    } else {
      uint8_t m[16];
      for (int i = 0; i < 16; i++) {
        int keep = p6 - i * 8;
        m[i] = keep >= 8 ? a[i] : keep <= 0 ? 0 : (uint8_t)(a[i] & (0xff << (8 - keep)));
      }
      uint64_t h = 0xcbf29ce484222325ULL;
      for (int i = 0; i < 16; i++) h = (h ^ m[i]) * 0x100000001b3ULL;
      return 4294967296.0 + (double)(h & ((1ULL << 52) - 1));
    }
  } else {
    return 0;
  }
  uint32_t v = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
  return (double)(bits <= 0 ? 0 : bits >= 32 ? v : v & (0xffffffffu << (32 - bits)));
}

// peer(fd) -> the peer's address as text (inet_ntop), or null: for a log line naming a client.
static napi_value js_peer(napi_env env, napi_callback_info info) {
  napi_value out;
  int32_t fd;
  if (!int_arg(env, info, &fd)) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char text[INET6_ADDRSTRLEN] = "";
  const void* a = NULL;
  if (getpeername(fd, (struct sockaddr*)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) a = &((struct sockaddr_in*)&ss)->sin_addr;
    else if (ss.ss_family == AF_INET6) a = &((struct sockaddr_in6*)&ss)->sin6_addr;
  }
  if (!a || !inet_ntop(ss.ss_family, a, text, sizeof text)) {
    napi_get_null(env, &out);
    return out;
  }
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out));
  return out;
}

/* ---------------------------------------------------------------- listener (primary) */

// Coalescing, as a NIC does with interrupts. Each wake-up of the primary costs two context
// switches, which on a loaded machine cost more than the accepts they serve. A wake-up less than
// HOLD_MS after the one before means connections arrive faster than that: the socket is then
// polled every HOLD_MS instead, until a tick finds none. Light traffic is dispatched at once.
// Admission is unaffected: connections wait at most HOLD_MS longer in the kernel's queue.
#define HOLD_MS 1

typedef struct {
  uv_poll_t poll;
  uv_timer_t timer;
  int fd;      /* our dup of the listening socket */
  int reserve; /* a spare descriptor, freed to accept-and-reset when out of descriptors */
  int closed;
  int handles; /* libuv handles still to be closed before freeing */
  uint64_t last_wake; /* uv_hrtime() of the last event-driven wake-up */
  int max_batch; /* descriptors accepted per batch at most: what the descriptor limit leaves */
  int p4, p6;    /* client key prefixes; p4 < 0: no keys (the peer address is not asked for) */
  js_cb onbatch;
  int fds[ACCEPT_BATCH];
  double keys[ACCEPT_BATCH];
  pinned_t fds_js, keys_js;
} listener_t;

static void listener_free(uv_handle_t* h) {
  listener_t* l = h->data;
  if (--l->handles > 0) return;
  close(l->fd);
  if (l->reserve >= 0) close(l->reserve);
  free(l);
}

static void on_acceptable(uv_poll_t* h, int status, int events);

static void on_hold(uv_timer_t* t) {
  listener_t* l = t->data;
  on_acceptable(&l->poll, 0, -1);
}

static void on_acceptable(uv_poll_t* h, int status, int events) {
  listener_t* l = h->data;
  int n = 0, failed = 0, lastErr = 0;
  if (status < 0) {
    failed = 1;
    lastErr = -status;
  }
  while (status >= 0 && n < l->max_batch) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(l->fd, l->p4 >= 0 ? (struct sockaddr*)&ss : NULL, l->p4 >= 0 ? &sl : NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      if (l->p4 >= 0) l->keys[n] = client_key(&ss, l->p4, l->p6);
      l->fds[n++] = fd;
      continue;
    }
    int e = errno;
    if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue; /* the client left first */
    if (e == EAGAIN || e == EWOULDBLOCK) break;
    lastErr = e;
    // Out of descriptors with a batch in hand: it is handed on or refused first, which frees
    // descriptors, and the socket, still readable, is accepted from again at the next wake-up.
    // (The primary's batch size keeps it short of the limit, so this is the second guard: a
    // burst test fails only without both.)
    if ((e == EMFILE || e == ENFILE) && n > 0) {
      lastErr = 0;
      break;
    }
    if ((e == EMFILE || e == ENFILE) && l->reserve >= 0) {
      // As libuv does: free the spare, and reset every waiting connection, so clients are told
      // at once instead of waiting in a queue nobody can take from. Each is counted.
      close(l->reserve);
      l->reserve = -1;
      for (int c; (c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0;) {
        close_with_reset(c);
        failed++;
      }
      l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    } else {
      failed++;
    }
    break;
  }
  if (!l->closed && status >= 0) {
    if (events < 0) { /* a tick of the hold */
      if (n + failed > 0) uv_timer_start(&l->timer, on_hold, HOLD_MS, 0);
      else uv_poll_start(&l->poll, UV_READABLE, on_acceptable);
    } else {
      uint64_t now = uv_hrtime();
      if (now - l->last_wake < (uint64_t)HOLD_MS * 1000000) {
        uv_poll_stop(&l->poll);
        uv_timer_start(&l->timer, on_hold, HOLD_MS, 0);
      }
      l->last_wake = now;
    }
  }
  if (n == 0 && failed == 0) return;
  CALL_JS(&l->onbatch, pinned_view(env, &l->fds_js, napi_int32_array, l->fds, (size_t)n, sizeof(int32_t)), num(env, failed), num(env, lastErr), pinned_view(env, &l->keys_js, napi_float64_array, l->keys, l->p4 >= 0 ? (size_t)n : 0, sizeof(double)));
}

// listen(fd, onBatch(fds: Int32Array, failed: number, errno: number, keys: Float64Array), maxBatch?,
// p4?, p6?) -> handle. With p4 and p6 (prefix lengths) each connection's client key comes in
// `keys` (else it is empty). Takes a dup of `fd`: the caller may close its own copy (and must, so
// libuv stops accepting).
static napi_value js_listen(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], out;
  int32_t fd, max_batch = ACCEPT_BATCH, p4 = -1, p6 = -1;
  napi_valuetype type = napi_undefined;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (argc > 2) CHECK(napi_typeof(env, argv[2], &type));
  if (type == napi_number) CHECK(napi_get_value_int32(env, argv[2], &max_batch));
  if (max_batch < 1 || max_batch > ACCEPT_BATCH) max_batch = ACCEPT_BATCH;
  type = napi_undefined;
  if (argc > 4) CHECK(napi_typeof(env, argv[4], &type));
  if (type == napi_number) {
    CHECK(napi_get_value_int32(env, argv[3], &p4));
    CHECK(napi_get_value_int32(env, argv[4], &p6));
    if (p4 < 0 || p4 > 32 || p6 < 0 || p6 > 128) {
      napi_throw_range_error(env, NULL, "fdpass: listen: client prefixes outside 0-32 and 0-128");
      return NULL;
    }
  }
  int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dupfd < 0) return throw_errno(env, "dup listening socket", errno);
  int fl = fcntl(dupfd, F_GETFL);
  fcntl(dupfd, F_SETFL, fl | O_NONBLOCK);
  listener_t* l = calloc(1, sizeof *l);
  if (!l) {
    close(dupfd);
    return throw_errno(env, "listen", ENOMEM);
  }
  l->fd = dupfd;
  l->fds_js.bytes = sizeof l->fds;
  l->keys_js.bytes = sizeof l->keys;
  l->max_batch = max_batch;
  l->p4 = p4;
  l->p6 = p6;
  l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
  l->poll.data = l;
  l->timer.data = l;
  l->handles = 1;
  uv_loop_t* loop;
  int r = cb_init(env, argv[1], "acceptor.fdpass.accept", &l->onbatch) == 0 && napi_get_uv_event_loop(env, &loop) == napi_ok ? 0 : UV_EINVAL;
  if (r == 0) r = uv_poll_init(loop, &l->poll, dupfd);
  if (r != 0) {
    cb_free(&l->onbatch);
    listener_free((uv_handle_t*)&l->poll); /* never registered with the loop */
    return throw_errno(env, "poll listening socket", -r);
  }
  uv_timer_init(loop, &l->timer);
  l->handles = 2;
  r = uv_poll_start(&l->poll, UV_READABLE, on_acceptable);
  if (r != 0) {
    cb_free(&l->onbatch);
    uv_close((uv_handle_t*)&l->poll, listener_free);
    uv_close((uv_handle_t*)&l->timer, listener_free);
    return throw_errno(env, "poll listening socket", -r);
  }
  CHECK(napi_create_external(env, l, NULL, NULL, &out));
  return out;
}

static napi_value js_unlisten(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  listener_t* l = handle_args(env, info, 1, argv);
  if (!l || l->closed) return NULL;
  l->closed = 1;
  uv_poll_stop(&l->poll);
  uv_timer_stop(&l->timer);
  cb_free(&l->onbatch);
  pinned_free(env, &l->fds_js);
  pinned_free(env, &l->keys_js);
  uv_close((uv_handle_t*)&l->poll, listener_free);
  uv_close((uv_handle_t*)&l->timer, listener_free);
  return NULL;
}

/* ---------------------------------------------------------------- channel (primary) */

typedef struct {
  uv_poll_t poll;
  int fd;     /* primary's end: sends descriptors, reads close reports */
  int peer;   /* the worker's end, kept to reclaim what the worker never read */
  int events;
  int closed;
  int blocked;      /* the last send met EAGAIN: wake when writable */
  int want_reports; /* wake when the worker reports closes (else they are read at the next batch) */
  js_cb onclosed;   /* (n) connections the worker reports closed, or hands back */
  js_cb onwritable; /* () the channel took messages again after EAGAIN */
  int* moved;       /* connections the worker handed back, read and not yet taken */
  size_t nmoved, capmoved;
  dbuf moved_keys;  /* their client keys */
  uint32_t moved_lost; /* handed back but dropped in transit (this process out of descriptors) */
  dbuf closed_keys; /* closes told by client key, read and not yet taken */
} channel_t;

static void channel_free(uv_handle_t* h) {
  channel_t* c = h->data;
  for (size_t i = 0; i < c->nmoved; i++) close_with_reset(c->moved[i]);
  free(c->moved);
  free(c->moved_keys.v);
  free(c->closed_keys.v);
  free(c);
}

static void keep_moved(channel_t* c, const int* fds, const double* keys, size_t k) {
  if (c->nmoved + k > c->capmoved) {
    size_t cap = c->capmoved ? c->capmoved : 16;
    while (c->nmoved + k > cap) cap *= 2;
    int* grown = realloc(c->moved, cap * sizeof(int));
    if (grown) {
      c->moved = grown;
      c->capmoved = cap;
    }
  }
  if (c->nmoved + k > c->capmoved || dbuf_push(&c->moved_keys, keys, k) != 0) {
    /* no memory to keep them: the clients are reset, the slots still freed */
    for (size_t i = 0; i < k; i++) close_with_reset(fds[i]);
    c->moved_lost += (uint32_t)k;
    return;
  }
  memcpy(c->moved + c->nmoved, fds, k * sizeof(int));
  c->nmoved += k;
}

// Reads every message the worker has sent: close reports (returned, summed; by key also kept in
// c->closed_keys) and connections handed back (kept in c->moved for takeMoved()).
static uint32_t drain_reports(channel_t* c) {
  uint32_t total = 0;
  union {
    uint32_t count;
    msg_head head;
    double align[1 + KEYS_PER_MSG];
  } m;
  const double* keys = m.align + 1;
  char cbuf[CMSG_SPACE(MAX_FDS_PER_MSG * sizeof(int))];
  for (;;) {
    struct iovec iov = {&m, sizeof m};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    ssize_t r = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r == sizeof m.count) {
      total += m.count;
      continue;
    }
    if (r < (ssize_t)sizeof m.head) break;
    size_t n = ((size_t)r - sizeof m.head) / sizeof(double);
    if (m.head.tag == KEYS_TAG) {
      total += (uint32_t)n;
      dbuf_push(&c->closed_keys, keys, n); /* no memory: the slots are freed all the same */
      continue;
    }
    if (m.head.tag != MOVE_TAG) break;
    size_t got = 0;
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      if (got + k > n) k = n - got; /* never: one key per descriptor */
      keep_moved(c, (int*)CMSG_DATA(cm), keys + got, k);
      got += k;
    }
    if (got < m.head.n) c->moved_lost += m.head.n - (uint32_t)got;
  }
  return total;
}

static void on_channel(uv_poll_t* h, int status, int events);

static void channel_update(channel_t* c) {
  int events = (c->want_reports ? UV_READABLE : 0) | (c->blocked ? UV_WRITABLE : 0);
  if (c->events == events) return;
  c->events = events;
  if (events) uv_poll_start(&c->poll, events, on_channel);
  else uv_poll_stop(&c->poll);
}

static void on_channel(uv_poll_t* h, int status, int events) {
  channel_t* c = h->data;
  if (status < 0) events = UV_READABLE | UV_WRITABLE;
  if (events & UV_READABLE) {
    uint32_t n = drain_reports(c);
    if (n > 0 || c->nmoved > 0 || c->moved_lost > 0) CALL_JS(&c->onclosed, num(env, n));
  }
  if (c->closed) return;
  if ((events & UV_WRITABLE) && c->blocked) {
    c->blocked = 0;
    channel_update(c);
    napi_env env = c->onwritable.env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    cb_call(&c->onwritable, 0, NULL);
    napi_close_handle_scope(env, scope);
  }
}

// channel(onClosed(n), onWritable()) -> [handle, workerFd]
static napi_value js_channel(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, ext;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return throw_errno(env, "socketpair", errno);
  channel_t* c = calloc(1, sizeof *c);
  if (!c) {
    close(sv[0]);
    close(sv[1]);
    return throw_errno(env, "channel", ENOMEM);
  }
  c->fd = sv[0];
  c->peer = sv[1];
  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (cb_init(env, argv[0], "acceptor.fdpass.closed", &c->onclosed) != 0 || cb_init(env, argv[1], "acceptor.fdpass.writable", &c->onwritable) != 0 ||
      uv_poll_init(loop, &c->poll, c->fd) != 0) {
    cb_free(&c->onclosed);
    cb_free(&c->onwritable);
    close(sv[0]);
    close(sv[1]);
    free(c);
    napi_throw_error(env, NULL, "fdpass: channel: init");
    return NULL;
  }
  c->poll.data = c;
  c->want_reports = 1;
  channel_update(c);
  uv_unref((uv_handle_t*)&c->poll); /* the worker process keeps the primary alive, not this */
  CHECK(napi_create_external(env, c, NULL, NULL, &ext));
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_set_element(env, out, 0, ext));
  CHECK(napi_set_element(env, out, 1, num(env, c->peer)));
  return out;
}

// send(handle, fds: Int32Array, at: Float64Array, start, count, keys?: Float64Array) -> sent (>= 0)
// or -errno. Each descriptor goes with its accept time and client key (0 without keys), as pairs.
// Sent descriptors are closed here (the worker has its own now). Fewer than `count` sent with
// no error means EAGAIN: onWritable follows once the worker has read.
static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  channel_t* c = handle_args(env, info, 6, argv);
  if (!c) return NULL;
  if (c->closed) return num(env, -EPIPE);
  int32_t* fds;
  double* at;
  double* keys = NULL;
  size_t nf, na, nk = 0;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  napi_valuetype kt;
  CHECK(napi_get_typedarray_info(env, argv[1], &t, &nf, (void**)&fds, &ab, &off));
  CHECK(napi_get_typedarray_info(env, argv[2], &t, &na, (void**)&at, &ab, &off));
  CHECK(napi_typeof(env, argv[5], &kt));
  if (kt == napi_object) CHECK(napi_get_typedarray_info(env, argv[5], &t, &nk, (void**)&keys, &ab, &off));
  int64_t start, count;
  CHECK(napi_get_value_int64(env, argv[3], &start));
  CHECK(napi_get_value_int64(env, argv[4], &count));
  if (start < 0 || count < 0 || (size_t)(start + count) > nf || (size_t)(start + count) > na || (keys && (size_t)(start + count) > nk)) {
    napi_throw_range_error(env, NULL, "fdpass: send: range outside the arrays");
    return NULL;
  }
  char cbuf[CMSG_SPACE(MAX_FDS_PER_MSG * sizeof(int))];
  double pairs[2 * MAX_FDS_PER_MSG];
  int64_t sent = 0;
  int err = 0;
  while (sent < count) {
    int k = (int)(count - sent < MAX_FDS_PER_MSG ? count - sent : MAX_FDS_PER_MSG);
    int32_t* batch = fds + start + sent;
    for (int i = 0; i < k; i++) {
      pairs[2 * i] = at[start + sent + i];
      pairs[2 * i + 1] = keys ? keys[start + sent + i] : 0;
    }
    struct iovec iov = {pairs, (size_t)k * 2 * sizeof(double)};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = CMSG_SPACE(k * sizeof(int));
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(k * sizeof(int));
    memcpy(CMSG_DATA(cm), batch, k * sizeof(int));
    ssize_t r = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    for (int i = 0; i < k; i++) close(batch[i]);
    sent += k;
  }
  if (err == EAGAIN || err == EWOULDBLOCK) {
    c->blocked = 1;
    channel_update(c);
    err = 0;
  }
  return num(env, err && sent == 0 ? -err : (double)sent);
}

// reports(handle) -> closes the worker has reported since the last read, read now.
static napi_value js_reports(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  channel_t* c = handle_args(env, info, 1, argv);
  if (!c) return NULL;
  return num(env, c->closed ? 0 : drain_reports(c));
}

// takeMoved(handle) -> null, or { fds, keys, lost }: connections the worker handed back since the
// last take (the caller's now), their client keys, and how many were dropped in transit.
static napi_value js_take_moved(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  channel_t* c = handle_args(env, info, 1, argv);
  if (!c) return NULL;
  if (c->nmoved == 0 && c->moved_lost == 0) {
    napi_get_null(env, &out);
    return out;
  }
  CHECK(napi_create_object(env, &out));
  CHECK(napi_set_named_property(env, out, "fds", int32_array(env, c->moved, c->nmoved)));
  CHECK(napi_set_named_property(env, out, "keys", float64_array(env, c->moved_keys.v, c->moved_keys.n)));
  CHECK(napi_set_named_property(env, out, "lost", num(env, c->moved_lost)));
  c->nmoved = 0;
  c->moved_keys.n = 0;
  c->moved_lost = 0;
  return out;
}

// takeClosedKeys(handle) -> null, or the client keys of the closes read since the last take (each
// also counted in what reports() and onClosed gave).
static napi_value js_take_closed_keys(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  channel_t* c = handle_args(env, info, 1, argv);
  if (!c) return NULL;
  if (c->closed_keys.n == 0) {
    napi_get_null(env, &out);
    return out;
  }
  out = float64_array(env, c->closed_keys.v, c->closed_keys.n);
  c->closed_keys.n = 0;
  return out;
}

// wantReports(handle, bool): whether a report wakes the primary (onClosed) or waits to be read.
static napi_value js_want_reports(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool want;
  channel_t* c = handle_args(env, info, 2, argv);
  if (!c) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &want));
  if (c->closed) return NULL;
  c->want_reports = want;
  channel_update(c);
  return NULL;
}

// reclaim(handle) -> { fds, at, closed }: for a worker that has exited. Reads the close reports
// it sent before it died and every hand-off it never received, then closes the channel. The
// returned descriptors are the caller's to hand on or refuse.
static napi_value js_reclaim(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  channel_t* c = handle_args(env, info, 1, argv);
  if (!c) return NULL;
  if (c->closed) {
    napi_throw_error(env, NULL, "fdpass: reclaim: channel already closed");
    return NULL;
  }
  c->closed = 1;
  uint32_t closed = drain_reports(c);
  size_t cap = 256, n = 0;
  int* fds = malloc(cap * sizeof(int));
  double* at = malloc(cap * sizeof(double));
  double* keys = malloc(cap * sizeof(double));
  double payload[2 * MAX_FDS_PER_MSG];
  char cbuf[CMSG_SPACE(MAX_FDS_PER_MSG * sizeof(int))];
  for (;;) {
    struct iovec iov = {payload, sizeof payload};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    ssize_t r = recvmsg(c->peer, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      if (n + k > cap) {
        while (n + k > cap) cap *= 2;
        fds = realloc(fds, cap * sizeof(int));
        at = realloc(at, cap * sizeof(double));
        keys = realloc(keys, cap * sizeof(double));
      }
      memcpy(fds + n, CMSG_DATA(cm), k * sizeof(int));
      size_t pairs = (size_t)r / (2 * sizeof(double));
      for (size_t i = 0; i < k; i++) {
        at[n + i] = i < pairs ? payload[2 * i] : 0;
        keys[n + i] = i < pairs ? payload[2 * i + 1] : 0;
      }
      n += k;
    }
  }
  uv_poll_stop(&c->poll);
  close(c->fd);
  close(c->peer);
  cb_free(&c->onclosed);
  cb_free(&c->onwritable);
  uv_close((uv_handle_t*)&c->poll, channel_free);
  CHECK(napi_create_object(env, &out));
  CHECK(napi_set_named_property(env, out, "fds", int32_array(env, fds, n)));
  CHECK(napi_set_named_property(env, out, "at", float64_array(env, at, n)));
  CHECK(napi_set_named_property(env, out, "keys", float64_array(env, keys, n)));
  CHECK(napi_set_named_property(env, out, "closed", num(env, closed)));
  CHECK(napi_set_named_property(env, out, "closedKeys", float64_array(env, c->closed_keys.v, c->closed_keys.n)));
  // Handed back before it died: the caller's to hand on (never lost with the worker).
  CHECK(napi_set_named_property(env, out, "moved", int32_array(env, c->moved, c->nmoved)));
  CHECK(napi_set_named_property(env, out, "movedKeys", float64_array(env, c->moved_keys.v, c->moved_keys.n)));
  CHECK(napi_set_named_property(env, out, "movedLost", num(env, c->moved_lost)));
  c->nmoved = 0;
  c->moved_keys.n = 0;
  c->closed_keys.n = 0;
  c->moved_lost = 0;
  free(fds);
  free(at);
  free(keys);
  return out;
}

/* ---------------------------------------------------------------- receiver (worker) */

typedef struct {
  uv_poll_t poll;
  int fd;
  int events;
  int closed;
  uint32_t unreported; /* closed connections not yet told to the primary */
  dbuf unreported_keys; /* closes by client key not yet told (reportKeys) */
  js_cb onbatch;
  int fds[RECV_BATCH];
  double at[RECV_BATCH];
  double keys[RECV_BATCH];
  double lost_keys[RECV_BATCH]; /* keys of hand-offs the kernel dropped (MSG_CTRUNC) */
  pinned_t fds_js, at_js, keys_js, lost_keys_js;
} receiver_t;

static void on_receivable(uv_poll_t* h, int status, int events);

static void receiver_watch(receiver_t* rx, int events) {
  if (rx->events == events) return;
  rx->events = events;
  uv_poll_start(&rx->poll, events, on_receivable);
}

// Sends the pending close count, then the closes by key (KEYS_PER_MSG a message); on EAGAIN the
// rest stays pending and goes when writable.
static int receiver_flush(receiver_t* rx) {
  while (rx->unreported > 0) {
    ssize_t r = send(rx->fd, &rx->unreported, sizeof rx->unreported, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r == sizeof rx->unreported) {
      rx->unreported = 0;
      break;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      receiver_watch(rx, UV_READABLE | UV_WRITABLE);
      return EAGAIN;
    }
    return r < 0 ? errno : EIO; /* the primary is gone: nothing to tell */
  }
  size_t done = 0;
  int err = 0;
  while (done < rx->unreported_keys.n) {
    size_t k = rx->unreported_keys.n - done < KEYS_PER_MSG ? rx->unreported_keys.n - done : KEYS_PER_MSG;
    msg_head head = {KEYS_TAG, (uint32_t)k};
    struct iovec iov[2] = {{&head, sizeof head}, {rx->unreported_keys.v + done, k * sizeof(double)}};
    struct msghdr msg = {0};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ssize_t r = sendmsg(rx->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = errno == EAGAIN || errno == EWOULDBLOCK ? EAGAIN : errno;
      break;
    }
    done += k;
  }
  if (done > 0) {
    memmove(rx->unreported_keys.v, rx->unreported_keys.v + done, (rx->unreported_keys.n - done) * sizeof(double));
    rx->unreported_keys.n -= done;
  }
  if (err == EAGAIN) {
    receiver_watch(rx, UV_READABLE | UV_WRITABLE);
    return EAGAIN;
  }
  if (err) return err; /* the primary is gone: nothing to tell */
  receiver_watch(rx, UV_READABLE);
  return 0;
}

static void on_receivable(uv_poll_t* h, int status, int events) {
  receiver_t* rx = h->data;
  if (status < 0) events = UV_READABLE | UV_WRITABLE;
  if (events & UV_WRITABLE) receiver_flush(rx);
  if (!(events & UV_READABLE) || rx->closed) return;
  size_t n = 0;
  int missing = 0, eof = 0;
  double payload[2 * MAX_FDS_PER_MSG];
  char cbuf[CMSG_SPACE(MAX_FDS_PER_MSG * sizeof(int))];
  // Stop while a whole message still fits, so nothing read is ever left without room.
  while (n + (size_t)missing + MAX_FDS_PER_MSG <= RECV_BATCH) {
    struct iovec iov = {payload, sizeof payload};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    ssize_t r = recvmsg(rx->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break; /* EAGAIN: drained */
    if (r == 0) {
      eof = 1; /* the primary is gone */
      break;
    }
    size_t expected = (size_t)r / (2 * sizeof(double)), got = 0;
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(rx->fds + n + got, CMSG_DATA(cm), k * sizeof(int));
      got += k;
    }
    // Out of descriptors here (MSG_CTRUNC): the kernel closed the rest. Their slots must still
    // be freed, so they are counted by the caller.
    if (got > expected) got = expected;
    for (size_t i = 0; i < expected; i++) {
      if (i < got) {
        rx->at[n + i] = payload[2 * i];
        rx->keys[n + i] = payload[2 * i + 1];
      } else {
        rx->lost_keys[missing + i - got] = payload[2 * i + 1];
      }
    }
    missing += (int)(expected - got);
    n += got;
  }
  if (eof) {
    uv_poll_stop(&rx->poll);
    rx->events = 0;
  }
  if (n == 0 && missing == 0) return;
  CALL_JS(&rx->onbatch, pinned_view(env, &rx->fds_js, napi_int32_array, rx->fds, n, sizeof(int32_t)), pinned_view(env, &rx->at_js, napi_float64_array, rx->at, n, sizeof(double)), num(env, missing),
          pinned_view(env, &rx->keys_js, napi_float64_array, rx->keys, n, sizeof(double)), pinned_view(env, &rx->lost_keys_js, napi_float64_array, rx->lost_keys, (size_t)missing, sizeof(double)));
}

// receiver(fd, onBatch(fds: Int32Array, at: Float64Array, missing: number)) -> handle
static napi_value js_receiver(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return throw_errno(env, "receiver: channel descriptor", errno);
  if (type != SOCK_SEQPACKET) return throw_errno(env, "receiver: channel descriptor", EPROTOTYPE);
  // Inherited at fork without close-on-exec: a handler's child processes must not get it.
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  receiver_t* rx = calloc(1, sizeof *rx);
  if (!rx) return throw_errno(env, "receiver", ENOMEM);
  rx->fd = fd;
  rx->fds_js.bytes = sizeof rx->fds;
  rx->at_js.bytes = sizeof rx->at;
  rx->keys_js.bytes = sizeof rx->keys;
  rx->lost_keys_js.bytes = sizeof rx->lost_keys;
  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (cb_init(env, argv[1], "acceptor.fdpass.receive", &rx->onbatch) != 0 || uv_poll_init(loop, &rx->poll, fd) != 0) {
    cb_free(&rx->onbatch);
    free(rx);
    napi_throw_error(env, NULL, "fdpass: receiver: init");
    return NULL;
  }
  rx->poll.data = rx;
  receiver_watch(rx, UV_READABLE);
  uv_unref((uv_handle_t*)&rx->poll); /* the IPC channel keeps the worker alive, not this */
  CHECK(napi_create_external(env, rx, NULL, NULL, &out));
  return out;
}

// report(handle, n) -> 0, or the errno if the primary cannot be told (it is gone).
static napi_value js_report(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t n;
  receiver_t* rx = handle_args(env, info, 2, argv);
  if (!rx) return NULL;
  CHECK(napi_get_value_uint32(env, argv[1], &n));
  rx->unreported += n;
  int err = receiver_flush(rx);
  return num(env, err == EAGAIN ? 0 : err);
}

// give(handle, fd, key?) -> 0, or the errno (EAGAIN: the channel is full; try again later). Hands
// an idle connection back to the primary, with its client key. On 0 the message holds the
// connection: the caller closes its own descriptor (the connection stays open) and never reports
// it closed.
static napi_value js_give(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  receiver_t* rx = handle_args(env, info, 3, argv);
  if (!rx) return NULL;
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  struct {
    msg_head head;
    double key;
  } m = {{MOVE_TAG, 1}, 0};
  napi_valuetype kt;
  CHECK(napi_typeof(env, argv[2], &kt));
  if (kt == napi_number) CHECK(napi_get_value_double(env, argv[2], &m.key));
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {&m, sizeof m};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  ssize_t r;
  do r = sendmsg(rx->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return num(env, r == (ssize_t)sizeof m ? 0 : r < 0 ? errno : EIO);
}

// reportKeys(handle, keys: Float64Array) -> 0, or the errno if the primary cannot be told. Closes
// by client key (where the primary limits connections per client); batched, never lost on EAGAIN.
static napi_value js_report_keys(napi_env env, napi_callback_info info) {
  napi_value argv[2], ab;
  receiver_t* rx = handle_args(env, info, 2, argv);
  if (!rx) return NULL;
  double* keys;
  size_t n, off;
  napi_typedarray_type t;
  CHECK(napi_get_typedarray_info(env, argv[1], &t, &n, (void**)&keys, &ab, &off));
  if (t != napi_float64_array) {
    napi_throw_type_error(env, NULL, "fdpass: reportKeys: a Float64Array");
    return NULL;
  }
  if (dbuf_push(&rx->unreported_keys, keys, n) != 0) return throw_errno(env, "reportKeys", ENOMEM);
  int err = receiver_flush(rx);
  return num(env, err == EAGAIN ? 0 : err);
}

// flushSync(handle, timeoutMs) -> true once every close is told: for a worker about to exit.
static napi_value js_flush_sync(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  int32_t ms;
  receiver_t* rx = handle_args(env, info, 2, argv);
  if (!rx) return NULL;
  CHECK(napi_get_value_int32(env, argv[1], &ms));
  uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)ms;
  while (receiver_flush(rx) == EAGAIN) {
    uint64_t now = uv_hrtime() / 1000000;
    if (now >= deadline) break;
    struct pollfd p = {rx->fd, POLLOUT, 0};
    poll(&p, 1, (int)(deadline - now));
  }
  napi_get_boolean(env, rx->unreported == 0 && rx->unreported_keys.n == 0, &out);
  return out;
}

// Closes a descriptor the caller could not use (a worker failing to wrap one, or a reclaimed
// one at shutdown that gets no answer): reset, so the client is not left waiting.
static napi_value js_reset(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_arg(env, info, &fd)) return NULL;
  close_with_reset(fd);
  return NULL;
}

/* ---------------------------------------------------------------- refuser (primary) */

// "Server busy" for a descriptor the primary will not hand on, without a net.Socket: under
// saturation most connections end here. The answer is written and the write side shut (FIN after
// it); then the request is read and discarded until the client closes, or LINGER_MS at most:
// closing with unread bytes would send a reset, which can destroy the answer before the client
// reads it. Lingering sockets share one epoll set, looked at every TICK_MS by one timer: a
// refused client's close must not wake the primary (two context switches) just to close a
// descriptor nobody waits for, thousands of times a second under saturation.
#define LINGER_MS 2000
#define TICK_MS 5

typedef struct linger_s {
  int fd;
  uint64_t deadline; /* ms, uv_now */
  struct linger_s *prev, *next;
} linger_t;

typedef struct {
  uv_timer_t tick;
  int epfd;
  char* payload;    /* NULL: refuse with a reset */
  size_t len;
  linger_t *head, *tail; /* oldest first: one timeout, so deadlines are in order */
  size_t lingering;
  size_t max_lingering; /* beyond it, closed once answered: what the descriptor limit leaves */
} refuser_t;

static void linger_end(refuser_t* r, linger_t* e) {
  close(e->fd); /* leaves the epoll set with it */
  if (e->prev) e->prev->next = e->next; else r->head = e->next;
  if (e->next) e->next->prev = e->prev; else r->tail = e->prev;
  r->lingering--;
  free(e);
}

// Reads and discards; 1 once the client has closed (or the socket failed).
static int discard(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

static void on_tick(uv_timer_t* t) {
  refuser_t* r = t->data;
  struct epoll_event ev[256];
  for (int n = 256; n == 256;) {
    n = epoll_wait(r->epfd, ev, 256, 0);
    for (int i = 0; i < n; i++) {
      linger_t* e = ev[i].data.ptr;
      if ((ev[i].events & (EPOLLERR | EPOLLHUP)) || discard(e->fd)) linger_end(r, e);
    }
  }
  uint64_t now = uv_now(t->loop);
  while (r->head && r->head->deadline <= now) linger_end(r, r->head);
  if (r->lingering == 0) uv_timer_stop(t);
}

static void refuser_free(uv_handle_t* h) {
  refuser_t* r = h->data;
  while (r->head) linger_end(r, r->head);
  close(r->epfd);
  free(r->payload);
  free(r);
}

// refuser(payload: Buffer | null, maxLingering?) -> handle. null: refuse with a TCP reset.
static napi_value js_refuser(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  napi_valuetype type = napi_undefined;
  double max_lingering = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc > 1) CHECK(napi_typeof(env, argv[1], &type));
  if (type == napi_number) CHECK(napi_get_value_double(env, argv[1], &max_lingering));
  refuser_t* r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "refuser", ENOMEM);
  r->max_lingering = max_lingering >= 0 ? (size_t)max_lingering : SIZE_MAX;
  CHECK(napi_typeof(env, argv[0], &type));
  if (type != napi_null) {
    void* data;
    CHECK(napi_get_buffer_info(env, argv[0], &data, &r->len));
    r->payload = malloc(r->len);
    memcpy(r->payload, data, r->len);
  }
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (r->epfd < 0) {
    int e = errno;
    free(r->payload);
    free(r);
    return throw_errno(env, "refuser", e);
  }
  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  uv_timer_init(loop, &r->tick);
  r->tick.data = r;
  uv_unref((uv_handle_t*)&r->tick);
  CHECK(napi_create_external(env, r, NULL, NULL, &out));
  return out;
}

// refuse(handle, fd): answers busy and closes, now or after the linger. Takes the descriptor.
static napi_value js_refuse(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  refuser_t* r = handle_args(env, info, 2, argv);
  if (!r) return NULL;
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  if (!r->payload) {
    close_with_reset(fd);
    return NULL;
  }
  // A fresh socket's send buffer always takes the short answer whole; if not, reset rather than
  // send half of it.
  ssize_t w;
  do w = send(fd, r->payload, r->len, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w != (ssize_t)r->len) {
    close_with_reset(fd);
    return NULL;
  }
  shutdown(fd, SHUT_WR);
  // The client gone already: nothing to linger for. Or no descriptor to spare for it: closed
  // now, with the request read so far discarded, so only bytes still to come could bring a reset.
  if (discard(fd) || r->lingering >= r->max_lingering) {
    close(fd);
    return NULL;
  }
  linger_t* e = calloc(1, sizeof *e);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = e};
  if (!e || epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    free(e);
    close(fd);
    return NULL;
  }
  e->fd = fd;
  e->deadline = uv_now(r->tick.loop) + LINGER_MS;
  e->prev = r->tail;
  if (r->tail) r->tail->next = e; else r->head = e;
  r->tail = e;
  if (r->lingering++ == 0) uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
  return NULL;
}

// lingering(handle) -> refused sockets still waiting for their client to close.
static napi_value js_lingering(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  refuser_t* r = handle_args(env, info, 1, argv);
  return r ? num(env, (double)r->lingering) : NULL;
}

static napi_value js_close_refuser(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  refuser_t* r = handle_args(env, info, 1, argv);
  if (!r || uv_is_closing((uv_handle_t*)&r->tick)) return NULL;
  uv_close((uv_handle_t*)&r->tick, refuser_free);
  return NULL;
}

// Sums the accept queues (idiag_rqueue of a LISTEN socket) of family `family`'s listening TCP
// sockets on `port` into *sum, counting them into *found. Asks for LISTEN sockets only, so the
// kernel walks its listening hash and never the established one. 0, or an errno.
static int diag_listeners(int family, uint16_t port, double* sum, int* found) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return errno;
  struct {
    struct nlmsghdr nh;
    struct inet_diag_req_v2 r;
  } req;
  memset(&req, 0, sizeof req);
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.r.sdiag_family = family;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = 1u << TCP_LISTEN;
  req.r.id.idiag_sport = htons(port); /* the kernel skips listeners on other ports */
  struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
  int err = 0;
  if (sendto(fd, &req, sizeof req, 0, (struct sockaddr*)&nl, sizeof nl) < 0) err = errno;
  long buf[8192 / sizeof(long)];
  for (int done = 0; !err && !done;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    for (struct nlmsghdr* h = (struct nlmsghdr*)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = 1;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr* e = NLMSG_DATA(h);
        err = e->error ? -e->error : EPROTO;
        break;
      }
      struct inet_diag_msg* m = NLMSG_DATA(h);
      if (m->idiag_state != TCP_LISTEN || ntohs(m->id.idiag_sport) != port) continue;
      *sum += m->idiag_rqueue;
      (*found)++;
    }
  }
  close(fd);
  return err;
}

// listenQueue(port) -> [queued, listeners] over IPv4 and IPv6, or null if sock_diag cannot tell
// (the caller falls back to /proc).
static napi_value js_listen_queue(napi_env env, napi_callback_info info) {
  int32_t port;
  if (!int_arg(env, info, &port)) return NULL;
  double sum = 0;
  int found = 0;
  napi_value out;
  if (port < 0 || port > 65535 || diag_listeners(AF_INET, (uint16_t)port, &sum, &found) || diag_listeners(AF_INET6, (uint16_t)port, &sum, &found)) {
    napi_get_null(env, &out);
    return out;
  }
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_set_element(env, out, 0, num(env, sum)));
  CHECK(napi_set_element(env, out, 1, num(env, found)));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_default_method, NULL},
      {"unlisten", NULL, js_unlisten, NULL, NULL, NULL, napi_default_method, NULL},
      {"channel", NULL, js_channel, NULL, NULL, NULL, napi_default_method, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default_method, NULL},
      {"reports", NULL, js_reports, NULL, NULL, NULL, napi_default_method, NULL},
      {"wantReports", NULL, js_want_reports, NULL, NULL, NULL, napi_default_method, NULL},
      {"reclaim", NULL, js_reclaim, NULL, NULL, NULL, napi_default_method, NULL},
      {"takeMoved", NULL, js_take_moved, NULL, NULL, NULL, napi_default_method, NULL},
      {"give", NULL, js_give, NULL, NULL, NULL, napi_default_method, NULL},
      {"reportKeys", NULL, js_report_keys, NULL, NULL, NULL, napi_default_method, NULL},
      {"peer", NULL, js_peer, NULL, NULL, NULL, napi_default_method, NULL},
      {"takeClosedKeys", NULL, js_take_closed_keys, NULL, NULL, NULL, napi_default_method, NULL},
      {"receiver", NULL, js_receiver, NULL, NULL, NULL, napi_default_method, NULL},
      {"report", NULL, js_report, NULL, NULL, NULL, napi_default_method, NULL},
      {"flushSync", NULL, js_flush_sync, NULL, NULL, NULL, napi_default_method, NULL},
      {"refuser", NULL, js_refuser, NULL, NULL, NULL, napi_default_method, NULL},
      {"refuse", NULL, js_refuse, NULL, NULL, NULL, napi_default_method, NULL},
      {"lingering", NULL, js_lingering, NULL, NULL, NULL, napi_default_method, NULL},
      {"closeRefuser", NULL, js_close_refuser, NULL, NULL, NULL, napi_default_method, NULL},
      {"reset", NULL, js_reset, NULL, NULL, NULL, napi_default_method, NULL},
      {"listenQueue", NULL, js_listen_queue, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
