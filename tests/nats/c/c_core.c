/* Core NATS with cnats: publish/subscribe, wildcards, a queue group (each message to exactly
 * one member), request/reply, no responders (NATS_NO_RESPONDERS) and headers. */
#include "scenario.h"

/* Takes `count` messages from a synchronous subscription; each has kWaitMs to arrive. Their
 * subjects (or payloads) go to `out` as a JSON list body. */
static void take_subjects(natsSubscription* sub, int count, char* out, size_t size, bool payloads,
                          const char* what) {
  out[0] = '\0';
  for (int i = 0; i < count; i++) {
    natsMsg* m = NULL;
    natsStatus s = natsSubscription_NextMsg(&m, sub, kWaitMs);
    CHECK(s == NATS_OK, "%s: message %d of %d: %s", what, i + 1, count, natsStatus_GetText(s));
    if (payloads) {
      char data[256];
      snprintf(data, sizeof data, "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
      list_add(out, size, data);
    } else {
      list_add(out, size, natsMsg_GetSubject(m));
    }
    natsMsg_Destroy(m);
  }
}

static void echo_responder(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure) {
  (void)sub;
  (void)closure;
  char answer[300];
  snprintf(answer, sizeof answer, "echo:%.*s", natsMsg_GetDataLength(msg), natsMsg_GetData(msg));
  if (natsMsg_GetReply(msg) != NULL) {
    natsConnection_PublishString(nc, natsMsg_GetReply(msg), answer);
  }
  natsMsg_Destroy(msg);
}

int main(int argc, char** argv) {
  tr_begin("c_core", 30);
  ScenarioArgs args = scenario_args(argc, argv);
  natsConnection* nc = scenario_connect(&args);
  tr_step("connect", "\"headers\": true");
  char list[2048];

  /* Publish/subscribe, in order. */
  {
    natsSubscription* sub = NULL;
    CHECK_OK(natsConnection_SubscribeSync(&sub, nc, "c.core.plain"), "subscribe c.core.plain");
    const char* bodies[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
      CHECK_OK(natsConnection_PublishString(nc, "c.core.plain", bodies[i]), "publish");
    }
    take_subjects(sub, 3, list, sizeof list, true, "c.core.plain messages");
    tr_step("pub_sub", "\"received\": [%s]", list);
    CHECK(strcmp(list, "\"one\", \"two\", \"three\"") == 0, "payloads in publish order: got [%s]",
          list);
    natsSubscription_Destroy(sub);
  }

  /* Wildcards; a last message both subscriptions match marks the end. */
  {
    natsSubscription* star = NULL;
    natsSubscription* tail = NULL;
    CHECK_OK(natsConnection_SubscribeSync(&star, nc, "c.core.w.*"), "subscribe c.core.w.*");
    CHECK_OK(natsConnection_SubscribeSync(&tail, nc, "c.core.w.>"), "subscribe c.core.w.>");
    const char* subjects[] = {"c.core.w.a", "c.core.w.a.b", "c.core.x.a", "c.core.w",
                              "c.core.w.end"};
    for (int i = 0; i < 5; i++) {
      CHECK_OK(natsConnection_PublishString(nc, subjects[i], subjects[i]), "publish");
    }
    char star_list[512];
    char tail_list[512];
    take_subjects(star, 2, star_list, sizeof star_list, false, "c.core.w.* messages");
    take_subjects(tail, 3, tail_list, sizeof tail_list, false, "c.core.w.> messages");
    tr_step("wildcards", "\"star\": [%s], \"tail\": [%s]", star_list, tail_list);
    CHECK(strcmp(star_list, "\"c.core.w.a\", \"c.core.w.end\"") == 0, "c.core.w.* received [%s]",
          star_list);
    CHECK(strcmp(tail_list, "\"c.core.w.a\", \"c.core.w.a.b\", \"c.core.w.end\"") == 0,
          "c.core.w.> received [%s]", tail_list);
    natsSubscription_Destroy(star);
    natsSubscription_Destroy(tail);
  }

  /* A queue group of three members on connections of their own: each message reaches exactly
   * one. The publisher's flush means the server has routed every message; each member's flush
   * then means its share is in its subscription's queue. */
  {
    enum { kMembers = 3, kCount = 30 };
    natsConnection* conns[kMembers];
    natsSubscription* subs[kMembers];
    for (int i = 0; i < kMembers; i++) {
      conns[i] = scenario_connect(&args);
      CHECK_OK(natsConnection_QueueSubscribeSync(&subs[i], conns[i], "c.core.q", "workers"),
               "queue subscribe");
      CHECK_OK(natsConnection_FlushTimeout(conns[i], kWaitMs), "flush a member");
    }
    for (int i = 0; i < kCount; i++) {
      char body[16];
      snprintf(body, sizeof body, "q%d", i);
      CHECK_OK(natsConnection_PublishString(nc, "c.core.q", body), "publish to the queue group");
    }
    CHECK_OK(natsConnection_FlushTimeout(nc, kWaitMs), "flush the publisher");
    bool seen[kCount] = {false};
    int total = 0;
    int twice = 0;
    for (int i = 0; i < kMembers; i++) {
      CHECK_OK(natsConnection_FlushTimeout(conns[i], kWaitMs), "flush a member");
      int pending = 0;
      CHECK_OK(natsSubscription_GetPending(subs[i], &pending, NULL), "pending of a member");
      for (int k = 0; k < pending; k++) {
        natsMsg* m = NULL;
        CHECK_OK(natsSubscription_NextMsg(&m, subs[i], kWaitMs), "a member's message");
        char body[16];
        snprintf(body, sizeof body, "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
        int n = atoi(body + 1);
        CHECK(body[0] == 'q' && n >= 0 && n < kCount, "unexpected message %s", body);
        twice += seen[n] ? 1 : 0;
        seen[n] = true;
        total++;
        natsMsg_Destroy(m);
      }
      natsSubscription_Destroy(subs[i]);
      natsConnection_Destroy(conns[i]);
    }
    tr_step("queue_group", "\"members_received\": %d, \"twice\": %d", total, twice);
    CHECK(total == kCount, "messages across the queue group: %d of %d", total, kCount);
    CHECK(twice == 0, "%d messages reached two members", twice);
  }

  /* Request/reply. */
  {
    natsSubscription* responder = NULL;
    natsMsg* reply = NULL;
    CHECK_OK(natsConnection_Subscribe(&responder, nc, "c.core.svc", echo_responder, NULL),
             "subscribe the responder");
    CHECK_OK(natsConnection_FlushTimeout(nc, kWaitMs), "flush");
    CHECK_OK(natsConnection_RequestString(&reply, nc, "c.core.svc", "hello", kWaitMs), "request");
    char data[64];
    snprintf(data, sizeof data, "%.*s", natsMsg_GetDataLength(reply), natsMsg_GetData(reply));
    char quoted[80];
    json_string(quoted, sizeof quoted, data);
    tr_step("request_reply", "\"data\": %s", quoted);
    CHECK(strcmp(data, "echo:hello") == 0, "the reply: %s", data);
    natsMsg_Destroy(reply);
    natsSubscription_Destroy(responder);
  }

  /* No responders: the 503 status becomes NATS_NO_RESPONDERS at once. */
  {
    natsMsg* reply = NULL;
    natsStatus s = natsConnection_RequestString(&reply, nc, "c.core.nobody", "anyone?", kWaitMs);
    tr_step("no_responders", "\"status\": \"%s\"", natsStatus_GetText(s));
    CHECK(s == NATS_NO_RESPONDERS, "a request without responders: %s", natsStatus_GetText(s));
  }

  /* Headers: repeated values keep their order. */
  {
    natsSubscription* sub = NULL;
    natsMsg* out = NULL;
    natsMsg* in = NULL;
    CHECK_OK(natsConnection_SubscribeSync(&sub, nc, "c.core.h"), "subscribe c.core.h");
    CHECK_OK(natsMsg_Create(&out, "c.core.h", NULL, "with headers", 12), "natsMsg_Create");
    CHECK_OK(natsMsgHeader_Add(out, "X-Loft", "one"), "header add");
    CHECK_OK(natsMsgHeader_Add(out, "X-Loft", "two"), "header add");
    CHECK_OK(natsMsgHeader_Set(out, "Trace-Id", "abc-123"), "header set");
    CHECK_OK(natsConnection_PublishMsg(nc, out), "publish with headers");
    CHECK_OK(natsSubscription_NextMsg(&in, sub, kWaitMs), "the message with headers");
    const char** values = NULL;
    int count = 0;
    const char* trace = NULL;
    CHECK_OK(natsMsgHeader_Values(in, "X-Loft", &values, &count), "X-Loft values");
    CHECK_OK(natsMsgHeader_Get(in, "Trace-Id", &trace), "Trace-Id");
    list[0] = '\0';
    for (int i = 0; i < count; i++) {
      list_add(list, sizeof list, values[i]);
    }
    char quoted[64];
    json_string(quoted, sizeof quoted, trace);
    tr_step("headers", "\"x_loft\": [%s], \"trace_id\": %s", list, quoted);
    CHECK(strcmp(list, "\"one\", \"two\"") == 0, "X-Loft values: [%s]", list);
    CHECK(strcmp(trace, "abc-123") == 0, "Trace-Id: %s", trace);
    free((void*)values);
    natsMsg_Destroy(in);
    natsMsg_Destroy(out);
    natsSubscription_Destroy(sub);
  }

  natsConnection_Destroy(nc);
  tr_step("closed", "%s", "");
  nats_CloseAndWait(kWaitMs);
  tr_finish();
  return 0;
}
