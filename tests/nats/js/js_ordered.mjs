// Ordered consumers with nats.js (ack_policy none, made and remade by the client): a pull
// ordered consumer (`js.consumers.get(stream)` with no name) through `consume()` and through
// `fetch()` with a filter; a push ordered subscription (`consumerOpts().orderedConsumer()`), with
// messages published while it runs. Then the ack policies themselves on named consumers:
// ack_policy none (a delivery is done once sent: acks are answered and change nothing, a nak
// brings nothing back) and ack_policy all (an ack settles every pending message up to it).
import { AckPolicy, consumerOpts } from "nats";
import { check, checkEqual, connectTo, eventually, freshStream, kCallTimeoutMs, run, take, text, within } from "./lib.mjs";

const kStream = "LOFT_ORDERED";
const kMessages = 60;

// What a client checks of an ordered delivery: stream and consumer sequences, no redelivery.
function orderCheck(msgs, firstSeq = 1) {
  return {
    count: msgs.length,
    stream_seqs_in_order: msgs.every((m, i) => m.seq === firstSeq + i),
    consumer_seqs_gap_free: msgs.every((m, i) => i === 0 || m.info.deliverySequence === msgs[i - 1].info.deliverySequence + 1),
    attempts: [...new Set(msgs.map((m) => m.info.deliveryCount))],
    ack_reply: [...new Set(msgs.map((m) => (m.reply ?? "").startsWith("$JS.ACK.")))],
  };
}

// The config fields an ordered consumer's client sets and the server fills in (no names).
function orderedConfig(c) {
  return {
    ack_policy: c.ack_policy,
    max_deliver: c.max_deliver,
    mem_storage: c.mem_storage ?? false,
    num_replicas: c.num_replicas,
    deliver_policy: c.deliver_policy,
    opt_start_seq: c.opt_start_seq ?? null,
    max_ack_pending: c.max_ack_pending ?? null,
    flow_control: c.flow_control ?? false,
    idle_heartbeat: c.idle_heartbeat ?? null,
    filter_subject: c.filter_subject ?? null,
  };
}

function numbers(info) {
  return {
    delivered: { consumer_seq: info.delivered.consumer_seq, stream_seq: info.delivered.stream_seq },
    ack_floor: { consumer_seq: info.ack_floor.consumer_seq, stream_seq: info.ack_floor.stream_seq },
    num_ack_pending: info.num_ack_pending,
    num_redelivered: info.num_redelivered,
    num_pending: info.num_pending,
  };
}

run("js_ordered", 30000, async (t, opts) => {
  const nc = await connectTo(opts);
  const { jsm, js } = await freshStream(nc, { name: kStream, subjects: ["ordered.>"] });
  const published = [];
  for (let i = 1; i <= kMessages; i++) {
    const subject = i % 2 === 1 ? "ordered.odd" : "ordered.even";
    published.push(await js.publish(subject, `m${i}`, { msgID: `ordered-${i}` }));
  }
  const again = await js.publish("ordered.odd", "m1", { msgID: "ordered-1" });
  t.step("publish", {
    seqs_in_order: published.every((a, i) => a.seq === i + 1),
    duplicate: { duplicate: again.duplicate, seq: again.seq },
  });
  checkEqual(again.duplicate, true, "a msgID published again is a duplicate");

  // Pull ordered consumer, consume(): every message once, in order.
  const oc = await within(js.consumers.get(kStream), kCallTimeoutMs, "an ordered consumer");
  const iter = await within(oc.consume({ max_messages: 16 }), kCallTimeoutMs, "ordered consume");
  const consumed = await take(iter, kMessages, 3 * kCallTimeoutMs, "ordered consume");
  const ocInfo = await oc.info(true);
  t.step("ordered_consume", {
    ...orderCheck(consumed),
    data_last: text(consumed[consumed.length - 1].data),
    config: orderedConfig(ocInfo.config),
  });
  checkEqual(consumed.map((m) => m.seq), Array.from({ length: kMessages }, (_, i) => i + 1), "ordered consume: stream sequences");
  check(orderCheck(consumed).consumer_seqs_gap_free, "ordered consume: consumer sequences without a gap");
  await iter.close();

  // Pull ordered consumer with a filter, fetch() twice: the odd messages, in order.
  const of = await within(js.consumers.get(kStream, { filterSubjects: "ordered.odd" }), kCallTimeoutMs, "a filtered ordered consumer");
  const fetched = [];
  for (let round = 0; round < 2; round++) {
    const batch = await within(of.fetch({ max_messages: kMessages / 4, expires: 5000 }), kCallTimeoutMs, "ordered fetch");
    for await (const m of batch) fetched.push(m);
  }
  t.step("ordered_fetch", {
    count: fetched.length,
    seqs: fetched.map((m) => m.seq),
    subjects: [...new Set(fetched.map((m) => m.subject))],
    consumer_seqs_gap_free: orderCheck(fetched).consumer_seqs_gap_free,
  });
  checkEqual(fetched.map((m) => m.seq), Array.from({ length: kMessages / 2 }, (_, i) => 2 * i + 1), "ordered fetch: the odd sequences");

  // Push ordered subscription: what is stored, then what is published while it runs.
  const pushed = [];
  const po = consumerOpts();
  po.orderedConsumer();
  po.callback((err, m) => {
    if (err === null && m !== null) pushed.push(m);
  });
  const sub = await within(js.subscribe("ordered.>", po), kCallTimeoutMs, "an ordered push subscription");
  await eventually(() => pushed.length >= kMessages, 3 * kCallTimeoutMs, "ordered push: the stored messages");
  for (let i = kMessages + 1; i <= kMessages + 5; i++) await js.publish("ordered.late", `m${i}`, { msgID: `ordered-${i}` });
  await eventually(() => pushed.length >= kMessages + 5, kCallTimeoutMs, "ordered push: the new messages");
  const pushedLate = pushed.slice(kMessages);
  const pushInfo = await sub.consumerInfo();
  t.step("ordered_push", {
    ...orderCheck(pushed),
    late_subjects: [...new Set(pushedLate.map((m) => m.subject))],
    config: orderedConfig(pushInfo.config),
  });
  checkEqual(pushed.map((m) => m.seq), Array.from({ length: kMessages + 5 }, (_, i) => i + 1), "ordered push: stream sequences");
  check(orderCheck(pushed).consumer_seqs_gap_free, "ordered push: consumer sequences without a gap");
  sub.unsubscribe();

  // The client's reset: the consumer of an ordered push subscription is deleted; after missed
  // heartbeats the client makes a new one at the next stream sequence, whose consumer
  // sequences start again at 1.
  const reset = [];
  const ro = consumerOpts();
  ro.orderedConsumer();
  ro.idleHeartbeat(500);
  ro.callback((err, m) => {
    if (err === null && m !== null) reset.push([m.seq, m.info.deliverySequence]);
  });
  const resetSub = await within(js.subscribe("ordered.late", ro), kCallTimeoutMs, "an ordered push subscription on ordered.late");
  await eventually(() => reset.length >= 5, kCallTimeoutMs, "ordered reset: the first messages");
  for (const c of await jsm.consumers.list(kStream).next()) await jsm.consumers.delete(kStream, c.name);
  for (let i = kMessages + 6; i <= kMessages + 8; i++) await js.publish("ordered.late", `m${i}`, { msgID: `ordered-${i}` });
  await eventually(() => reset.length >= 8, 3 * kCallTimeoutMs, "ordered reset: the messages after it");
  const remade = await jsm.consumers.list(kStream).next();
  t.step("ordered_push_reset", {
    delivered: reset,
    consumers_after: remade.length,
    config_after: orderedConfig(remade[0].config),
  });
  checkEqual(reset.map((d) => d[0]), [61, 62, 63, 64, 65, 66, 67, 68], "ordered reset: stream sequences");
  resetSub.unsubscribe();

  // ack_policy none on a named pull consumer.
  await jsm.consumers.add(kStream, { durable_name: "none_pull", ack_policy: AckPolicy.None, ack_wait: 1_000_000_000 });
  const none = await js.consumers.get(kStream, "none_pull");
  const first = [];
  for await (const m of await none.fetch({ max_messages: 5, expires: 5000 })) first.push(m);
  const ackAnswers = [];
  for (const m of first.slice(0, 2)) ackAnswers.push(await m.ackAck({ timeout: kCallTimeoutMs }));
  first[2].nak();
  await nc.flush();
  const noneInfo = await jsm.consumers.info(kStream, "none_pull");
  const second = [];
  for await (const m of await none.fetch({ max_messages: 5, expires: 5000 })) second.push(m);
  t.step("ack_none", {
    config: { ack_policy: noneInfo.config.ack_policy, max_ack_pending: noneInfo.config.max_ack_pending ?? null },
    first: first.map((m) => [m.seq, m.info.deliverySequence, m.info.deliveryCount]),
    ack_reply: [...new Set(first.map((m) => (m.reply ?? "").startsWith("$JS.ACK.")))],
    ack_sync: ackAnswers,
    after_five: numbers(noneInfo),
    second: second.map((m) => [m.seq, m.info.deliverySequence, m.info.deliveryCount]),
  });
  checkEqual(second.map((m) => m.seq), [6, 7, 8, 9, 10], "ack none: a nak brings nothing back");
  checkEqual(noneInfo.num_ack_pending, 0, "ack none: nothing pending once sent");

  // ack_policy all: an ack settles every pending message up to it.
  await jsm.consumers.add(kStream, { durable_name: "all_pull", ack_policy: AckPolicy.All, ack_wait: 30_000_000_000 });
  const all = await js.consumers.get(kStream, "all_pull");
  const got = [];
  for await (const m of await all.fetch({ max_messages: 5, expires: 5000 })) got.push(m);
  const acked3 = await got[2].ackAck({ timeout: kCallTimeoutMs });
  const afterThird = numbers(await jsm.consumers.info(kStream, "all_pull"));
  got[1].ack();  // below the floor now: changes nothing
  const acked5 = await got[4].ackAck({ timeout: kCallTimeoutMs });
  await eventually(async () => (await jsm.consumers.info(kStream, "all_pull")).num_ack_pending === 0, kCallTimeoutMs, "ack all: nothing pending");
  const afterFifth = numbers(await jsm.consumers.info(kStream, "all_pull"));
  t.step("ack_all", {
    delivered: got.map((m) => m.seq),
    ack_sync: [acked3, acked5],
    after_third: afterThird,
    after_fifth: afterFifth,
  });
  checkEqual(afterThird.num_ack_pending, 2, "ack all: the third ack settles the first three");
  checkEqual(afterThird.ack_floor.stream_seq, 3, "ack all: the floor after the third");

  await jsm.streams.delete(kStream);
  await nc.close();
});
