/* Shared by the cnats scenario programs: arguments, a JSON transcript and bounded failure.
 *
 * A program is `PROGRAM [URL [USER PASSWORD]]` (or NATS_URL, NATS_USER, NATS_PASS). It prints one
 * JSON object on stdout, as the nats.js scenarios do:
 *   {"scenario": NAME, "ok": true|false, "steps": [{"step": ..., ...}], "error": ...}
 * and exits 0 when every check held, 1 otherwise. Every library call that waits is given a
 * timeout; an alarm is the backstop that ends a scenario still running after its limit. */
#ifndef LOFT_TESTS_NATS_C_SCENARIO_H
#define LOFT_TESTS_NATS_C_SCENARIO_H

#include <nats/nats.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kWaitMs = 5000 };

typedef struct {
  const char* url;
  const char* user;
  const char* pass;
} ScenarioArgs;

/* The steps so far, as a JSON array's body; steps are appended whole so that the alarm
 * handler always finds a complete list. */
static char tr_steps[1 << 16];
static volatile size_t tr_len;
static const char* tr_name = "";

static inline void tr_write_all(const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDOUT_FILENO, s, n);
    if (w <= 0) {
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static inline void tr_emit(const char* error_json) {
  char head[256];
  int n = snprintf(head, sizeof head, "{\"scenario\": \"%s\", \"ok\": %s, \"steps\": [\n", tr_name,
                   error_json == NULL ? "true" : "false");
  tr_write_all(head, (size_t)n);
  tr_write_all(tr_steps, tr_len);
  tr_write_all("\n]", 2);
  if (error_json != NULL) {
    tr_write_all(", \"error\": ", 11);
    tr_write_all(error_json, strlen(error_json));
  }
  tr_write_all("}\n", 2);
}

static inline void tr_on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "\"scenario did not finish within its time limit\"";
  tr_emit(msg);
  static const char err[] = "scenario did not finish within its time limit\n";
  ssize_t ignored = write(STDERR_FILENO, err, sizeof err - 1);
  (void)ignored;
  _exit(1);
}

/* Writes s as a JSON string (quotes included) into out. */
static inline void json_string(char* out, size_t size, const char* s) {
  size_t o = 0;
  if (size < 3) {
    return;
  }
  out[o++] = '"';
  for (; s != NULL && *s != '\0' && o + 8 < size; ++s) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  out[o++] = '"';
  out[o] = '\0';
}

/* Ends the scenario as failed: the transcript so far and the error, exit 1. No cleanup: the
 * process ends at once (and the leak checker, which would report what is still open, does not
 * run). */
static inline void tr_fail(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void tr_fail(const char* fmt, ...) {
  char text[1024];
  char quoted[2100];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  alarm(0);
  json_string(quoted, sizeof quoted, text);
  tr_emit(quoted);
  fprintf(stderr, "%s: FAILED: %s\n", tr_name, text);
  fflush(stderr);
  _exit(1);
}

/* Appends one step: the body of a JSON object after its "step" member, e.g.
 * tr_step("pub_sub", "\"received\": [\"one\"]"); an empty body is allowed. */
static inline void tr_step(const char* step, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void tr_step(const char* step, const char* fmt, ...) {
  char body[8192];
  char line[8400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  int n = snprintf(line, sizeof line, "%s  {\"step\": \"%s\"%s%s}", tr_len > 0 ? ",\n" : "", step,
                   body[0] != '\0' ? ", " : "", body);
  if (n < 0 || (size_t)n >= sizeof line || tr_len + (size_t)n >= sizeof tr_steps) {
    tr_fail("transcript step %s too long", step);
  }
  memcpy(tr_steps + tr_len, line, (size_t)n);
  tr_len += (size_t)n;
}

static inline void tr_begin(const char* name, unsigned limit_seconds) {
  tr_name = name;
  signal(SIGALRM, tr_on_alarm);
  alarm(limit_seconds);
}

static inline void tr_finish(void) {
  alarm(0);
  tr_emit(NULL);
}

#define CHECK(cond, ...)    \
  do {                      \
    if (!(cond)) {          \
      tr_fail(__VA_ARGS__); \
    }                       \
  } while (0)

/* A library call that must succeed. */
#define CHECK_OK(call, what)                                                            \
  do {                                                                                  \
    natsStatus s_ = (call);                                                             \
    if (s_ != NATS_OK) {                                                                \
      const char* last_ = nats_GetLastError(NULL);                                      \
      tr_fail("%s: %s (%s)", what, natsStatus_GetText(s_), last_ != NULL ? last_ : ""); \
    }                                                                                   \
  } while (0)

/* A JetStream call that must succeed; `jerr`, passed to the call, carries the API's err_code. */
#define CHECK_JS(call, jerr, what)                                                \
  do {                                                                            \
    (jerr) = (jsErrCode)0;                                                        \
    natsStatus s_ = (call);                                                       \
    if (s_ != NATS_OK) {                                                          \
      tr_fail("%s: %s (err_code %d)", what, natsStatus_GetText(s_), (int)(jerr)); \
    }                                                                             \
  } while (0)

static inline ScenarioArgs scenario_args(int argc, char** argv) {
  ScenarioArgs a;
  a.url = argc > 1 ? argv[1] : getenv("NATS_URL");
  a.user = argc > 2 ? argv[2] : getenv("NATS_USER");
  a.pass = argc > 3 ? argv[3] : getenv("NATS_PASS");
  if (a.url == NULL) {
    a.url = "nats://127.0.0.1:4222";
  }
  if (argc == 3 || argc > 4 || (a.user != NULL) != (a.pass != NULL)) {
    fprintf(stderr, "usage: %s [URL [USER PASSWORD]]\n", argv[0]);
    exit(2);
  }
  return a;
}

/* Connects with bounded timeouts and no reconnection. */
static inline natsConnection* scenario_connect(const ScenarioArgs* a) {
  natsOptions* opts = NULL;
  natsConnection* nc = NULL;
  CHECK_OK(natsOptions_Create(&opts), "natsOptions_Create");
  CHECK_OK(natsOptions_SetURL(opts, a->url), "natsOptions_SetURL");
  CHECK_OK(natsOptions_SetTimeout(opts, kWaitMs), "natsOptions_SetTimeout");
  CHECK_OK(natsOptions_SetAllowReconnect(opts, false), "natsOptions_SetAllowReconnect");
  if (a->user != NULL) {
    CHECK_OK(natsOptions_SetUserInfo(opts, a->user, a->pass), "natsOptions_SetUserInfo");
  }
  CHECK_OK(natsConnection_Connect(&nc, opts), "connect");
  natsOptions_Destroy(opts);
  return nc;
}

/* A JetStream context on `nc` whose API calls wait at most kWaitMs. */
static inline jsCtx* scenario_jetstream(natsConnection* nc) {
  jsCtx* js = NULL;
  jsOptions jo;
  CHECK_OK(jsOptions_Init(&jo), "jsOptions_Init");
  jo.Wait = kWaitMs;
  CHECK_OK(natsConnection_JetStream(&js, nc, &jo), "natsConnection_JetStream");
  return js;
}

/* Deletes `stream` if it is there (left over by an earlier run against a --target). */
static inline void scenario_drop_stream(jsCtx* js, const char* stream) {
  enum { kNoSuchStream = 10059 };
  jsErrCode jerr = 0;
  natsStatus s = js_DeleteStream(js, stream, NULL, &jerr);
  CHECK(s == NATS_OK || (int)jerr == kNoSuchStream, "delete %s: %s (err_code %d)", stream,
        natsStatus_GetText(s), (int)jerr);
}

/* The end of a JetStream scenario that passed: deletes its stream, closes the connection and
 * prints the transcript. */
static inline void scenario_js_finish(jsCtx* js, natsConnection* nc, const char* stream) {
  jsErrCode jerr = 0;
  CHECK_JS(js_DeleteStream(js, stream, NULL, &jerr), jerr, "js_DeleteStream");
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  nats_CloseAndWait(kWaitMs);
  tr_finish();
}

/* Appends a JSON string for s to a comma-separated list in out. */
static inline void list_add(char* out, size_t size, const char* s) {
  char quoted[512];
  json_string(quoted, sizeof quoted, s);
  size_t len = strlen(out);
  snprintf(out + len, size - len, "%s%s", len > 0 ? ", " : "", quoted);
}

#endif
