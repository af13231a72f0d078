/* Ordered consumers with cnats: js_Subscribe with jsSubOptions.Ordered makes an ephemeral push
 * consumer with ack_policy none, flow control and idle heartbeats, which the client remakes at
 * the next stream sequence if it sees a gap in consumer sequences. Every stored message comes
 * once, in stream order, with consecutive consumer sequences; so do messages published while
 * the subscription runs. The consumer's config as the server echoes it is recorded. */
#include <pthread.h>
#include <time.h>

#include "scenario.h"

static const char* const kStream = "LOFT_C_ORDERED";
enum { kStored = 50, kLate = 5, kTotal = kStored + kLate };

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int count;
  uint64_t last_stream_seq;
  uint64_t last_consumer_seq;
  int out_of_order;  /* stream sequences that do not follow the previous one */
  int consumer_gaps; /* consumer sequences that do not follow the previous one */
  int redelivered;   /* deliveries with an attempt number above 1 */
  char last_data[16];
} OrderedState;

static void on_ordered(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure) {
  (void)nc;
  (void)sub;
  OrderedState* st = closure;
  jsMsgMetaData* meta = NULL;
  natsStatus s = natsMsg_GetMetaData(&meta, msg);
  pthread_mutex_lock(&st->mu);
  if (s == NATS_OK) {
    if (st->count > 0 && meta->Sequence.Stream != st->last_stream_seq + 1) {
      st->out_of_order++;
    }
    if (st->count > 0 && meta->Sequence.Consumer != st->last_consumer_seq + 1) {
      st->consumer_gaps++;
    }
    if (meta->NumDelivered != 1) {
      st->redelivered++;
    }
    st->last_stream_seq = meta->Sequence.Stream;
    st->last_consumer_seq = meta->Sequence.Consumer;
    int len = natsMsg_GetDataLength(msg);
    if (len >= (int)sizeof st->last_data) {
      len = (int)sizeof st->last_data - 1;
    }
    memcpy(st->last_data, natsMsg_GetData(msg), (size_t)len);
    st->last_data[len] = '\0';
    st->count++;
    jsMsgMetaData_Destroy(meta);
  } else {
    st->out_of_order++; /* no JetStream metadata: not a delivery of the stream */
  }
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  natsMsg_Destroy(msg);
}

/* Waits until `want` messages arrived (or 3 * kWaitMs passed); returns the count. */
static int wait_for(OrderedState* st, int want) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 3 * kWaitMs / 1000;
  pthread_mutex_lock(&st->mu);
  while (st->count < want) {
    if (pthread_cond_timedwait(&st->cv, &st->mu, &until) != 0) {
      break;
    }
  }
  int count = st->count;
  pthread_mutex_unlock(&st->mu);
  return count;
}

static void publish(jsCtx* js, int i) {
  char body[16];
  char id[32];
  jsPubOptions po;
  jsErrCode jerr = 0;
  CHECK_OK(jsPubOptions_Init(&po), "jsPubOptions_Init");
  snprintf(body, sizeof body, "c%d", i);
  snprintf(id, sizeof id, "c-ordered-%d", i);
  po.MsgId = id;
  CHECK_JS(
      js_Publish(NULL, js, i % 2 ? "cord.odd" : "cord.even", body, (int)strlen(body), &po, &jerr),
      jerr, "js_Publish");
}

int main(int argc, char** argv) {
  tr_begin("c_ordered", 30);
  ScenarioArgs args = scenario_args(argc, argv);
  natsConnection* nc = scenario_connect(&args);
  jsCtx* js = scenario_jetstream(nc);
  jsErrCode jerr = 0;
  scenario_drop_stream(js, kStream);
  {
    jsStreamConfig cfg;
    const char* subjects[] = {"cord.>"};
    CHECK_OK(jsStreamConfig_Init(&cfg), "jsStreamConfig_Init");
    cfg.Name = kStream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    CHECK_JS(js_AddStream(NULL, js, &cfg, NULL, &jerr), jerr, "js_AddStream");
  }
  for (int i = 1; i <= kStored; i++) {
    publish(js, i);
  }

  OrderedState st;
  memset(&st, 0, sizeof st);
  pthread_mutex_init(&st.mu, NULL);
  pthread_cond_init(&st.cv, NULL);
  natsSubscription* sub = NULL;
  jsSubOptions so;
  CHECK_OK(jsSubOptions_Init(&so), "jsSubOptions_Init");
  so.Ordered = true;
  CHECK_JS(js_Subscribe(&sub, js, "cord.>", on_ordered, &st, NULL, &so, &jerr), jerr,
           "js_Subscribe with Ordered");
  int stored = wait_for(&st, kStored);
  CHECK(stored == kStored, "stored messages through the ordered consumer: %d of %d", stored,
        (int)kStored);
  for (int i = kStored + 1; i <= kTotal; i++) {
    publish(js, i);
  }
  int total = wait_for(&st, kTotal);

  jsConsumerInfo* ci = NULL;
  CHECK_JS(natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr), jerr,
           "the ordered consumer's info");
  pthread_mutex_lock(&st.mu);
  tr_step("ordered_subscribe",
          "\"delivered\": %d, \"last_stream_seq\": %llu, \"last_data\": \"%s\", "
          "\"out_of_order\": %d, \"consumer_gaps\": %d, \"redelivered\": %d, "
          "\"config\": {\"ack_policy\": %d, \"max_deliver\": %lld, \"mem_storage\": %s, "
          "\"flow_control\": %s, \"idle_heartbeat\": %lld, \"deliver_policy\": %d}",
          total, (unsigned long long)st.last_stream_seq, st.last_data, st.out_of_order,
          st.consumer_gaps, st.redelivered, (int)ci->Config->AckPolicy,
          (long long)ci->Config->MaxDeliver, ci->Config->MemoryStorage ? "true" : "false",
          ci->Config->FlowControl ? "true" : "false", (long long)ci->Config->Heartbeat,
          (int)ci->Config->DeliverPolicy);
  int out_of_order = st.out_of_order;
  int gaps = st.consumer_gaps;
  pthread_mutex_unlock(&st.mu);
  CHECK(total == kTotal, "messages through the ordered consumer: %d of %d", total, (int)kTotal);
  CHECK(out_of_order == 0, "messages out of stream order: %d", out_of_order);
  CHECK(gaps == 0, "gaps in consumer sequences: %d", gaps);
  CHECK(ci->Config->AckPolicy == js_AckNone, "ack policy none, got %d", (int)ci->Config->AckPolicy);
  jsConsumerInfo_Destroy(ci);

  CHECK_OK(natsSubscription_Unsubscribe(sub), "unsubscribe the ordered consumer");
  natsSubscription_Destroy(sub);
  pthread_cond_destroy(&st.cv);
  pthread_mutex_destroy(&st.mu);
  scenario_js_finish(js, nc, kStream);
  return 0;
}
