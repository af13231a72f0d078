/* JetStream with cnats: js_AddStream, js_Publish with a message id (a duplicate gets the
 * original's sequence), the err_codes of a missing stream and consumer, js_PullSubscribe with
 * natsSubscription_Fetch, natsMsg_AckSync, natsMsg_NakWithDelay (back as attempt 2),
 * natsMsg_InProgress, natsMsg_Term, a push consumer (js_AddConsumer with a deliver subject)
 * bound with js_Subscribe, and js_Subscribe making a push consumer with flow control and idle
 * heartbeats through which 3 MB pass (the client answers the server's flow-control requests). */
#include <pthread.h>
#include <time.h>

#include "scenario.h"

static const char* const kStream = "LOFT_C";
enum { kNakDelayMs = 500, kStreamNotFound = 10059, kConsumerNotFound = 10014 };

typedef struct {
  uint64_t seq;
  uint64_t attempt;
} Delivery;

static Delivery delivery_of(natsMsg* m) {
  jsMsgMetaData* meta = NULL;
  CHECK_OK(natsMsg_GetMetaData(&meta, m), "natsMsg_GetMetaData");
  Delivery d = {meta->Sequence.Stream, meta->NumDelivered};
  jsMsgMetaData_Destroy(meta);
  return d;
}

static int by_seq(const void* a, const void* b) {
  const Delivery* x = a;
  const Delivery* y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* "[[seq, attempt], ...]" body of the deliveries. */
static void deliveries_json(const Delivery* d, int n, char* out, size_t size) {
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < n && len < size; i++) {
    len += (size_t)snprintf(out + len, size - len, "%s[%llu, %llu]", i > 0 ? ", " : "",
                            (unsigned long long)d[i].seq, (unsigned long long)d[i].attempt);
  }
}

/* Fetches until `want` messages arrived or kWaitMs passed; a fetch may return fewer than asked
 * (cnats returns what is there), so this asks again for the rest. */
static int fetch(natsSubscription* sub, natsMsg** out, int want, const char* what) {
  int got = 0;
  int64_t deadline = nats_Now() + kWaitMs;
  while (got < want) {
    int64_t left = deadline - nats_Now();
    CHECK(left > 0, "%s: %d of %d messages within %d ms", what, got, want, (int)kWaitMs);
    natsMsgList list = {0};
    jsErrCode jerr = 0;
    natsStatus s = natsSubscription_Fetch(&list, sub, want - got, left, &jerr);
    CHECK(s == NATS_OK || s == NATS_TIMEOUT, "%s: fetch: %s (err_code %d)", what,
          natsStatus_GetText(s), (int)jerr);
    for (int i = 0; i < list.Count; i++) {
      out[got++] = list.Msgs[i];
      list.Msgs[i] = NULL; /* now ours */
    }
    natsMsgList_Destroy(&list);
  }
  return got;
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  Delivery got[16];
  int count;
} PushState;

static void on_push(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure) {
  (void)nc;
  (void)sub;
  PushState* st = closure;
  Delivery d = delivery_of(msg);
  natsMsg_Ack(msg, NULL);
  natsMsg_Destroy(msg);
  pthread_mutex_lock(&st->mu);
  if (st->count < 16) {
    st->got[st->count++] = d;
  }
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

/* The flow-control part: counts, acks, and checks the order. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int count;
  uint64_t last_seq;
  int out_of_order;
  int bytes_seen;
} FlowState;

static void on_big(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure) {
  (void)nc;
  (void)sub;
  FlowState* st = closure;
  Delivery d = delivery_of(msg);
  int len = natsMsg_GetDataLength(msg);
  natsMsg_Ack(msg, NULL);
  natsMsg_Destroy(msg);
  pthread_mutex_lock(&st->mu);
  if (st->count > 0 && d.seq != st->last_seq + 1) {
    st->out_of_order++;
  }
  st->last_seq = d.seq;
  st->bytes_seen = len;
  st->count++;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

static jsConsumerInfo* consumer_info(jsCtx* js, const char* name) {
  jsConsumerInfo* ci = NULL;
  jsErrCode jerr = 0;
  CHECK_JS(js_GetConsumerInfo(&ci, js, kStream, name, NULL, &jerr), jerr, "consumer info");
  return ci;
}

/* Polls the consumer until no ack is pending (acks are applied by the server asynchronously). */
static jsConsumerInfo* consumer_settled(jsCtx* js, const char* name) {
  int64_t deadline = nats_Now() + kWaitMs;
  for (;;) {
    jsConsumerInfo* ci = consumer_info(js, name);
    if (ci->NumAckPending == 0) {
      return ci;
    }
    CHECK(nats_Now() < deadline, "%s: %lld acks still pending after %d ms", name,
          (long long)ci->NumAckPending, (int)kWaitMs);
    jsConsumerInfo_Destroy(ci);
    nats_Sleep(20);
  }
}

int main(int argc, char** argv) {
  tr_begin("c_js", 30);
  ScenarioArgs args = scenario_args(argc, argv);
  natsConnection* nc = scenario_connect(&args);
  jsCtx* js = scenario_jetstream(nc);
  jsErrCode jerr = 0;
  char text[1024];
  scenario_drop_stream(js, kStream);
  {
    jsStreamConfig cfg;
    jsStreamInfo* si = NULL;
    const char* subjects[] = {"cjs.>"};
    CHECK_OK(jsStreamConfig_Init(&cfg), "jsStreamConfig_Init");
    cfg.Name = kStream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    CHECK_JS(js_AddStream(&si, js, &cfg, NULL, &jerr), jerr, "js_AddStream");
    tr_step("stream_create", "\"name\": \"%s\", \"messages\": %llu", si->Config->Name,
            (unsigned long long)si->State.Msgs);
    jsStreamInfo_Destroy(si);
  }

  /* js_Publish with a message id twice: one message, the second PubAck a duplicate of it. */
  {
    jsPubOptions po;
    jsPubAck* first = NULL;
    jsPubAck* again = NULL;
    CHECK_OK(jsPubOptions_Init(&po), "jsPubOptions_Init");
    po.MsgId = "c-order-1";
    CHECK_JS(js_Publish(&first, js, "cjs.a", "c1", 2, &po, &jerr), jerr,
             "js_Publish with a message id");
    CHECK_JS(js_Publish(&again, js, "cjs.a", "c1 again", 8, &po, &jerr), jerr,
             "js_Publish of the same id");
    tr_step("publish_msg_id",
            "\"first\": {\"seq\": %llu, \"duplicate\": %s}, \"second\": {\"seq\": %llu, "
            "\"duplicate\": %s}",
            (unsigned long long)first->Sequence, first->Duplicate ? "true" : "false",
            (unsigned long long)again->Sequence, again->Duplicate ? "true" : "false");
    CHECK(first->Sequence == 1 && !first->Duplicate, "the first publish: seq %llu",
          (unsigned long long)first->Sequence);
    CHECK(again->Sequence == 1 && again->Duplicate, "the duplicate: seq %llu duplicate %d",
          (unsigned long long)again->Sequence, again->Duplicate);
    jsPubAck_Destroy(first);
    jsPubAck_Destroy(again);
    for (int i = 2; i <= 5; i++) {
      char body[8];
      jsPubAck* ack = NULL;
      snprintf(body, sizeof body, "c%d", i);
      CHECK_JS(
          js_Publish(&ack, js, i % 2 ? "cjs.a" : "cjs.b", body, (int)strlen(body), NULL, &jerr),
          jerr, "js_Publish");
      CHECK(ack->Sequence == (uint64_t)i, "sequence of c%d: %llu", i,
            (unsigned long long)ack->Sequence);
      jsPubAck_Destroy(ack);
    }
  }

  /* The err_codes of a missing stream and a missing consumer. */
  {
    jsStreamInfo* si = NULL;
    jsConsumerInfo* ci = NULL;
    jsErrCode stream_err = 0;
    jsErrCode consumer_err = 0;
    natsStatus s1 = js_GetStreamInfo(&si, js, "LOFT_C_NO_SUCH_STREAM", NULL, &stream_err);
    natsStatus s2 = js_GetConsumerInfo(&ci, js, kStream, "no-such-consumer", NULL, &consumer_err);
    tr_step("errors",
            "\"stream_info_missing\": {\"status\": \"%s\", \"err_code\": %d}, "
            "\"consumer_info_missing\": {\"status\": \"%s\", \"err_code\": %d}",
            natsStatus_GetText(s1), (int)stream_err, natsStatus_GetText(s2), (int)consumer_err);
    CHECK(s1 == NATS_NOT_FOUND && (int)stream_err == kStreamNotFound,
          "a missing stream: %s, err_code %d", natsStatus_GetText(s1), (int)stream_err);
    CHECK(s2 == NATS_NOT_FOUND && (int)consumer_err == kConsumerNotFound,
          "a missing consumer: %s, err_code %d", natsStatus_GetText(s2), (int)consumer_err);
  }

  /* Pull: fetch 3; AckSync the first, nak the second with a delay, mark the third in progress
   * and ack it. */
  natsSubscription* pull = NULL;
  {
    jsSubOptions so;
    CHECK_OK(jsSubOptions_Init(&so), "jsSubOptions_Init");
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = (int64_t)10 * 1000 * 1000 * 1000;
    CHECK_JS(js_PullSubscribe(&pull, js, "cjs.>", "cpull", NULL, &so, &jerr), jerr,
             "js_PullSubscribe");
  }
  {
    natsMsg* m[3] = {NULL};
    Delivery d[3];
    fetch(pull, m, 3, "the first fetch");
    for (int i = 0; i < 3; i++) {
      d[i] = delivery_of(m[i]);
    }
    CHECK_JS(natsMsg_AckSync(m[0], NULL, &jerr), jerr, "natsMsg_AckSync");
    int64_t nak_at = nats_Now();
    CHECK_OK(natsMsg_NakWithDelay(m[1], kNakDelayMs, NULL), "natsMsg_NakWithDelay");
    CHECK_OK(natsMsg_InProgress(m[2], NULL), "natsMsg_InProgress");
    CHECK_JS(natsMsg_AckSync(m[2], NULL, &jerr), jerr, "natsMsg_AckSync after InProgress");
    deliveries_json(d, 3, text, sizeof text);
    tr_step("fetch", "\"delivered\": [%s]", text);
    CHECK(d[0].seq == 1 && d[1].seq == 2 && d[2].seq == 3, "sequences of the first fetch: %s",
          text);
    CHECK(d[0].attempt == 1 && d[1].attempt == 1 && d[2].attempt == 1,
          "attempts of the first fetch: %s", text);
    for (int i = 0; i < 3; i++) {
      natsMsg_Destroy(m[i]);
    }

    /* Fetch 3 more: 4 and 5, and 2 again as attempt 2 once its delay has passed. Term 4. */
    natsMsg* n[3] = {NULL};
    Delivery e[3];
    fetch(pull, n, 3, "the fetch after the nak");
    int64_t waited = nats_Now() - nak_at;
    for (int i = 0; i < 3; i++) {
      e[i] = delivery_of(n[i]);
      if (e[i].seq == 4) {
        CHECK_OK(natsMsg_Term(n[i], NULL), "natsMsg_Term");
      } else {
        CHECK_JS(natsMsg_AckSync(n[i], NULL, &jerr), jerr, "natsMsg_AckSync");
      }
      natsMsg_Destroy(n[i]);
    }
    qsort(e, 3, sizeof e[0], by_seq);
    deliveries_json(e, 3, text, sizeof text);
    tr_step("fetch_after_nak", "\"delivered\": [%s], \"nak_delay_respected\": %s", text,
            waited >= kNakDelayMs - 50 ? "true" : "false");
    CHECK(e[0].seq == 2 && e[0].attempt == 2 && e[1].seq == 4 && e[1].attempt == 1 &&
              e[2].seq == 5 && e[2].attempt == 1,
          "[seq, attempt] of the fetch after the nak: %s", text);
    CHECK(waited >= kNakDelayMs - 50,
          "the nak'd message came back after %lld ms, before its %d ms delay", (long long)waited,
          (int)kNakDelayMs);
  }
  {
    /* Nothing comes back after term: a fetch times out empty, and nothing is pending. */
    jsConsumerInfo* ci = consumer_settled(js, "cpull");
    natsMsgList list = {0};
    natsStatus fs = natsSubscription_Fetch(&list, pull, 1, 1000, &jerr);
    int fetched = list.Count;
    natsMsgList_Destroy(&list);
    tr_step("term",
            "\"fetch_after_term\": \"%s\", \"fetched\": %d, \"num_ack_pending\": %lld, "
            "\"ack_floor_stream_seq\": %llu",
            natsStatus_GetText(fs), fetched, (long long)ci->NumAckPending,
            (unsigned long long)ci->AckFloor.Stream);
    CHECK(fs == NATS_TIMEOUT && fetched == 0, "a fetch after term: %s with %d messages",
          natsStatus_GetText(fs), fetched);
    CHECK(ci->AckFloor.Stream == 5, "the ack floor after term: %llu",
          (unsigned long long)ci->AckFloor.Stream);
    jsConsumerInfo_Destroy(ci);
  }
  natsSubscription_Destroy(pull);

  /* Push: a durable with a deliver subject, bound with js_Subscribe; the callback acks. */
  {
    PushState st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    jsConsumerConfig cc;
    jsConsumerInfo* created = NULL;
    CHECK_OK(jsConsumerConfig_Init(&cc), "jsConsumerConfig_Init");
    cc.Durable = "cpush";
    cc.DeliverSubject = "c.push.deliver";
    cc.AckPolicy = js_AckExplicit;
    CHECK_JS(js_AddConsumer(&created, js, kStream, &cc, NULL, &jerr), jerr, "js_AddConsumer");
    jsConsumerInfo_Destroy(created);
    jsSubOptions so;
    natsSubscription* push = NULL;
    CHECK_OK(jsSubOptions_Init(&so), "jsSubOptions_Init");
    so.Stream = kStream;
    so.Consumer = "cpush";
    so.ManualAck = true;
    CHECK_JS(js_Subscribe(&push, js, "cjs.>", on_push, &st, NULL, &so, &jerr), jerr,
             "js_Subscribe bound to cpush");
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += kWaitMs / 1000;
    pthread_mutex_lock(&st.mu);
    while (st.count < 5) {
      if (pthread_cond_timedwait(&st.cv, &st.mu, &until) != 0) {
        break;
      }
    }
    int count = st.count;
    Delivery got[16];
    memcpy(got, st.got, sizeof got);
    pthread_mutex_unlock(&st.mu);
    CHECK(count == 5, "pushed messages: %d of 5 within %d ms", count, (int)kWaitMs);
    jsConsumerInfo* ci = consumer_settled(js, "cpush");
    qsort(got, (size_t)count, sizeof got[0], by_seq);
    deliveries_json(got, count, text, sizeof text);
    tr_step("push",
            "\"deliver_subject\": \"%s\", \"delivered\": [%s], \"num_ack_pending\": %lld, "
            "\"ack_floor_stream_seq\": %llu",
            ci->Config->DeliverSubject, text, (long long)ci->NumAckPending,
            (unsigned long long)ci->AckFloor.Stream);
    for (int i = 0; i < count; i++) {
      CHECK(got[i].seq == (uint64_t)i + 1 && got[i].attempt == 1, "[seq, attempt] pushed: %s",
            text);
    }
    CHECK(ci->AckFloor.Stream == 5, "the push consumer's ack floor: %llu",
          (unsigned long long)ci->AckFloor.Stream);
    jsConsumerInfo_Destroy(ci);
    CHECK_OK(natsSubscription_Unsubscribe(push), "unsubscribe the push consumer");
    natsSubscription_Destroy(push);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
  }

  /* Flow control and heartbeats: js_Subscribe makes an ephemeral push consumer on cjs.big. */
  {
    enum { kBig = 30, kBigSize = 100000 };
    FlowState st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    jsSubOptions so;
    natsSubscription* flowing = NULL;
    CHECK_OK(jsSubOptions_Init(&so), "jsSubOptions_Init");
    so.Config.FlowControl = true;
    so.Config.Heartbeat = (int64_t)1000 * 1000 * 1000;
    so.Config.AckPolicy = js_AckExplicit;
    so.ManualAck = true;
    CHECK_JS(js_Subscribe(&flowing, js, "cjs.big", on_big, &st, NULL, &so, &jerr), jerr,
             "js_Subscribe with flow control");
    static char big[kBigSize];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < kBig; i++) {
      CHECK_JS(js_Publish(NULL, js, "cjs.big", big, kBigSize, NULL, &jerr), jerr,
               "js_Publish 100 KB");
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3 * kWaitMs / 1000;
    pthread_mutex_lock(&st.mu);
    while (st.count < kBig) {
      if (pthread_cond_timedwait(&st.cv, &st.mu, &until) != 0) {
        break;
      }
    }
    int count = st.count;
    int out_of_order = st.out_of_order;
    int size = st.bytes_seen;
    pthread_mutex_unlock(&st.mu);
    jsConsumerInfo* ci = NULL;
    CHECK_JS(natsSubscription_GetConsumerInfo(&ci, flowing, NULL, &jerr), jerr,
             "the flow-controlled consumer's info");
    tr_step("push_flow_control",
            "\"flow_control\": %s, \"idle_heartbeat\": %lld, \"delivered\": %d, "
            "\"out_of_order\": %d, \"size\": %d",
            ci->Config->FlowControl ? "true" : "false", (long long)ci->Config->Heartbeat, count,
            out_of_order, size);
    jsConsumerInfo_Destroy(ci);
    CHECK(count == kBig, "messages through flow control: %d of %d", count, (int)kBig);
    CHECK(out_of_order == 0, "messages out of stream order: %d", out_of_order);
    CHECK_OK(natsSubscription_Unsubscribe(flowing), "unsubscribe the flow-controlled consumer");
    natsSubscription_Destroy(flowing);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
  }

  scenario_js_finish(js, nc, kStream);
  return 0;
}
