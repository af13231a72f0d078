// Push consumers with nats.js: a durable with a deliver_subject and a filter, bound with
// js.subscribe and acked; a deliver_group shared by two subscribers, each message to one; and
// an ephemeral push consumer made by js.subscribe with flow control and idle heartbeats, through
// which 3 MB pass (past the server's flow-control window: the client answers its requests).
import { AckPolicy, consumerOpts, createInbox, nanos } from "nats";
import { check, checkEqual, connectTo, eventually, freshStream, kCallTimeoutMs, run, take, text, within } from "./lib.mjs";

const kStream = "LOFT_PUSH";

function delivery(m) {
  return { seq: m.seq, subject: m.subject, data: text(m.data), attempt: m.info.deliveryCount };
}

run("js_push", 20000, async (t, opts) => {
  const nc = await connectTo(opts);
  const { jsm, js } = await freshStream(nc, { name: kStream, subjects: ["push.>"] });
  for (const [subject, body] of [["push.a", "a1"], ["push.b", "b1"], ["push.a", "a2"], ["push.a", "a3"]]) {
    await js.publish(subject, body);
  }

  // A durable push consumer on push.a, delivering to a subject of its own.
  const created = await jsm.consumers.add(kStream, {
    durable_name: "pusher",
    deliver_subject: "loft.push.deliver",
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(10_000),
    filter_subject: "push.a",
  });
  const bound = consumerOpts();
  bound.bind(kStream, "pusher");
  bound.manualAck();
  const sub = await within(js.subscribe("push.a", bound), kCallTimeoutMs, "js.subscribe bound to pusher");
  const got = await take(sub, 3, kCallTimeoutMs, "pushed messages");
  const acks = [];
  for (const m of got) acks.push(await m.ackAck({ timeout: kCallTimeoutMs }));
  await eventually(async () => (await jsm.consumers.info(kStream, "pusher")).num_ack_pending === 0, kCallTimeoutMs, "no acks pending on pusher");
  const info = await jsm.consumers.info(kStream, "pusher");
  t.step("push_durable", {
    deliver_subject: created.config.deliver_subject,
    push_bound: info.push_bound === true,
    delivered: got.map(delivery),
    ack_sync: acks,
    consumer: { num_pending: info.num_pending, num_ack_pending: info.num_ack_pending, ack_floor_stream_seq: info.ack_floor.stream_seq },
  });
  checkEqual(created.config.deliver_subject, "loft.push.deliver", "the deliver subject echoed back");
  checkEqual(got.map((m) => [m.seq, m.subject, m.info.deliveryCount]), [[1, "push.a", 1], [3, "push.a", 1], [4, "push.a", 1]],
    "sequence, subject and attempt of the pushed messages");
  checkEqual(acks, [true, true, true], "AckSync answers");
  checkEqual(info.ack_floor.stream_seq, 4, "the ack floor");
  sub.unsubscribe();

  // A deliver_group: two subscribers in the group share the stream's four messages.
  await jsm.consumers.add(kStream, {
    durable_name: "shared",
    deliver_subject: "loft.push.shared",
    deliver_group: "crew",
    ack_policy: AckPolicy.Explicit,
  });
  const seen = [];
  const members = [];
  for (let i = 0; i < 2; i++) {
    const o = consumerOpts();
    o.bind(kStream, "shared");
    o.queue("crew");
    o.manualAck();
    o.callback((err, m) => {
      if (err === null && m !== null) {
        seen.push(m.seq);
        m.ack();
      }
    });
    members.push(await within(js.subscribe("push.>", o), kCallTimeoutMs, "js.subscribe to the shared consumer"));
  }
  await eventually(() => seen.length >= 4, kCallTimeoutMs, "four messages across the deliver group");
  await eventually(async () => (await jsm.consumers.info(kStream, "shared")).num_ack_pending === 0, kCallTimeoutMs, "no acks pending on shared");
  await nc.flush();
  const sorted = [...seen].sort((a, b) => a - b);
  t.step("push_deliver_group", { delivered_seqs: sorted });
  checkEqual(sorted, [1, 2, 3, 4], "each message once across the group");
  members.forEach((m) => m.unsubscribe());

  // Flow control and heartbeats: js.subscribe makes an ephemeral push consumer on push.big.
  const big = "x".repeat(100_000);
  const kBig = 30;
  const fc = consumerOpts();
  fc.deliverTo(createInbox());
  fc.flowControl();
  fc.idleHeartbeat(1000);
  fc.manualAck();
  fc.ackExplicit();
  const flowing = await within(js.subscribe("push.big", fc), kCallTimeoutMs, "js.subscribe with flow control");
  for (let i = 0; i < kBig; i++) {
    await js.publish("push.big", big);
  }
  const bigs = await take(flowing, kBig, 3 * kCallTimeoutMs, "messages through flow control");
  for (const m of bigs) m.ack();
  const fcInfo = await flowing.consumerInfo();
  t.step("push_flow_control", {
    flow_control: fcInfo.config.flow_control === true,
    idle_heartbeat: fcInfo.config.idle_heartbeat,
    delivered: bigs.length,
    in_order: bigs.every((m, i) => i === 0 || m.seq === bigs[i - 1].seq + 1),
    sizes: [...new Set(bigs.map((m) => m.data.length))],
    attempts: [...new Set(bigs.map((m) => m.info.deliveryCount))],
  });
  checkEqual(bigs.length, kBig, "messages through flow control");
  check(bigs.every((m, i) => i === 0 || m.seq === bigs[i - 1].seq + 1), "in stream order");
  flowing.unsubscribe();

  await jsm.streams.delete(kStream);
  await nc.close();
});
