/* A JetStream benchmark with cnats, the same program against any NATS server (loftd's NATS port,
 * nats-server), for scripts/bench-nats.sh:
 *   nats_c_bench URL publish MESSAGES   js_PublishAsync of MESSAGES 100-byte messages to a fresh
 *                                       stream, at most 1,000 PubAcks in flight; the time from
 *                                       the first publish to the last PubAck
 *   nats_c_bench URL consume MESSAGES   fills a fresh stream with MESSAGES (not timed), then a
 *                                       durable pull consumer drains it: natsSubscription_Fetch
 *                                       of 100 at a time, natsMsg_Ack on each message (AckSync
 *                                       on the last, so every ack has been handled at the end)
 * Prints one JSON line: {"mode", "messages", "seconds", "msgs_per_sec"}. Exits 1 with a message
 * on any error (a failed publish included): a figure is only printed for a run that did all
 * its work. Every wait is bounded (10 s per call). */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kPayloadBytes = 100, kMaxPending = 1000, kFetchBatch = 100, kWaitMs = 10000 };

#define MUST(call)                                                                      \
  do {                                                                                  \
    natsStatus s_ = (call);                                                             \
    if (s_ != NATS_OK) {                                                                \
      fprintf(stderr, "nats_c_bench: %s: %s\n", #call, natsStatus_GetText(s_));         \
      nats_PrintLastErrorStack(stderr);                                                 \
      exit(1);                                                                          \
    }                                                                                   \
  } while (0)

static volatile int publish_errors = 0;

static void on_publish_error(jsCtx* js, jsPubAckErr* pae, void* closure) {
  (void)js;
  (void)closure;
  if (publish_errors++ == 0) {
    fprintf(stderr, "nats_c_bench: publish failed: %s (err_code %d) %s\n",
            natsStatus_GetText(pae->Err), (int)pae->ErrCode, pae->ErrText ? pae->ErrText : "");
  }
}

/* A fresh stream `name` capturing `subject` (an earlier run's is deleted first). */
static void fresh_stream(jsCtx* js, const char* name, const char* subject) {
  jsErrCode jerr = 0;
  js_DeleteStream(js, name, NULL, &jerr); /* not found is fine */
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  jsStreamInfo* si = NULL;
  MUST(js_AddStream(&si, js, &cfg, NULL, &jerr));
  jsStreamInfo_Destroy(si);
}

/* Publishes `n` messages with at most kMaxPending PubAcks in flight; waits for every PubAck. */
static void publish_all(jsCtx* js, const char* subject, int n) {
  char payload[kPayloadBytes];
  memset(payload, 'p', sizeof payload);
  for (int i = 0; i < n; i++) MUST(js_PublishAsync(js, subject, payload, kPayloadBytes, NULL));
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  MUST(js_PublishAsyncComplete(js, &po));
  if (publish_errors > 0) {
    fprintf(stderr, "nats_c_bench: %d publishes failed\n", publish_errors);
    exit(1);
  }
}

static void consume_all(jsCtx* js, const char* subject, int n) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "BENCH_CONSUME";
  so.Config.AckPolicy = js_AckExplicit;
  natsSubscription* sub = NULL;
  jsErrCode jerr = 0;
  MUST(js_PullSubscribe(&sub, js, subject, "bench", NULL, &so, &jerr));
  int got = 0;
  while (got < n) {
    natsMsgList list = {0};
    int want = n - got < kFetchBatch ? n - got : kFetchBatch;
    MUST(natsSubscription_Fetch(&list, sub, want, kWaitMs, &jerr));
    for (int i = 0; i < list.Count; i++) {
      if (++got == n) {
        MUST(natsMsg_AckSync(list.Msgs[i], NULL, &jerr));
      } else {
        MUST(natsMsg_Ack(list.Msgs[i], NULL));
      }
    }
    natsMsgList_Destroy(&list);
  }
  natsSubscription_Destroy(sub);
}

int main(int argc, char** argv) {
  if (argc != 4 || (strcmp(argv[2], "publish") != 0 && strcmp(argv[2], "consume") != 0) ||
      atoi(argv[3]) <= 0) {
    fprintf(stderr, "usage: nats_c_bench URL publish|consume MESSAGES\n");
    return 2;
  }
  const char* mode = argv[2];
  const int n = atoi(argv[3]);
  natsConnection* nc = NULL;
  MUST(natsConnection_ConnectTo(&nc, argv[1]));
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kWaitMs;
  jo.PublishAsync.MaxPending = kMaxPending;
  jo.PublishAsync.StallWait = kWaitMs;
  jo.PublishAsync.ErrHandler = on_publish_error;
  jsCtx* js = NULL;
  MUST(natsConnection_JetStream(&js, nc, &jo));

  int64_t start = 0;
  if (strcmp(mode, "publish") == 0) {
    fresh_stream(js, "BENCH_PUBLISH", "bench.publish");
    start = nats_NowInNanoSeconds();
    publish_all(js, "bench.publish", n);
  } else {
    fresh_stream(js, "BENCH_CONSUME", "bench.consume");
    publish_all(js, "bench.consume", n);
    start = nats_NowInNanoSeconds();
    consume_all(js, "bench.consume", n);
  }
  const double seconds = (double)(nats_NowInNanoSeconds() - start) / 1e9;
  printf("{\"mode\":\"%s\",\"messages\":%d,\"seconds\":%.3f,\"msgs_per_sec\":%.0f}\n", mode, n,
         seconds, (double)n / seconds);
  jsErrCode jerr = 0;
  js_DeleteStream(js, strcmp(mode, "publish") == 0 ? "BENCH_PUBLISH" : "BENCH_CONSUME", NULL,
                  &jerr);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  nats_Close();
  return 0;
}
