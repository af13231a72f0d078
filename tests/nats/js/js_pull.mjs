// Pull consumers with nats.js: fetch and consume with ack (and AckSync), nak with a delay (the
// message comes back later with attempt 2), working (+WPI keeps a message past its ack_wait)
// and term (the message does not come back).
import { AckPolicy, nanos } from "nats";
import { check, checkEqual, connectTo, delay, eventually, kCallTimeoutMs, run, take, text, within } from "./lib.mjs";

const kStream = "LOFT_PULL";
const kNakDelayMs = 500;

function delivery(m) {
  return { seq: m.seq, data: text(m.data), subject: m.subject, attempt: m.info.deliveryCount, redelivered: m.redelivered };
}

async function deleteIfPresent(jsm, name) {
  try {
    await jsm.streams.delete(name);
  } catch (err) {
    if (err?.api_error?.err_code !== 10059) throw err;
  }
}

async function consumerState(jsm, name) {
  const ci = await jsm.consumers.info(kStream, name);
  return {
    num_pending: ci.num_pending,
    num_ack_pending: ci.num_ack_pending,
    num_redelivered: ci.num_redelivered,
    delivered_consumer_seq: ci.delivered.consumer_seq,
    delivered_stream_seq: ci.delivered.stream_seq,
    ack_floor_stream_seq: ci.ack_floor.stream_seq,
  };
}

run("js_pull", 30000, async (t, opts) => {
  const nc = await connectTo(opts);
  const jsm = await within(nc.jetstreamManager(), kCallTimeoutMs, "jetstreamManager");
  const js = nc.jetstream({ timeout: kCallTimeoutMs });
  await deleteIfPresent(jsm, kStream);
  await jsm.streams.add({ name: kStream, subjects: ["pull.>"] });
  await jsm.consumers.add(kStream, { durable_name: "worker", ack_policy: AckPolicy.Explicit, ack_wait: nanos(10_000) });
  await jsm.consumers.add(kStream, {
    durable_name: "slow",
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(2000),
    filter_subject: "pull.slow",
  });
  for (let i = 1; i <= 5; i++) {
    await js.publish(`pull.${i % 2 ? "odd" : "even"}`, `p${i}`);
  }
  const worker = await js.consumers.get(kStream, "worker");

  // Fetch 3: ack the first (AckSync), nak the second with a delay, mark the third as in
  // progress and then ack it.
  const batch1 = await take(await worker.fetch({ max_messages: 3, expires: 2000 }), 3, kCallTimeoutMs, "the first fetch");
  const [m1, m2, m3] = batch1;
  const acked1 = await m1.ackAck({ timeout: kCallTimeoutMs });
  const nakAt = Date.now();
  m2.nak(kNakDelayMs);
  m3.working();
  const acked3 = await m3.ackAck({ timeout: kCallTimeoutMs });
  t.step("fetch", { delivered: batch1.map(delivery), ack_sync: [acked1, acked3] });
  checkEqual(batch1.map((m) => m.seq), [1, 2, 3], "sequences of the first fetch");
  checkEqual(batch1.map((m) => m.info.deliveryCount), [1, 1, 1], "attempts of the first fetch");
  checkEqual(batch1.map((m) => m.subject), ["pull.odd", "pull.even", "pull.odd"], "subjects as published");
  checkEqual([acked1, acked3], [true, true], "AckSync answers");

  // Fetch 3 more: 4 and 5 at once, 2 again once its nak delay has passed, as attempt 2.
  const batch2 = await take(await worker.fetch({ max_messages: 3, expires: 3000 }), 3, kCallTimeoutMs, "the second fetch");
  const again = batch2.find((m) => m.seq === 2);
  check(again !== undefined, `message 2 is redelivered after its nak (got ${JSON.stringify(batch2.map(delivery))})`);
  const nakWaitedMs = Date.now() - nakAt;
  const sorted = [...batch2].sort((a, b) => a.seq - b.seq);
  t.step("fetch_after_nak", { delivered: sorted.map(delivery), nak_delay_respected: nakWaitedMs >= kNakDelayMs - 50 });
  checkEqual(sorted.map((m) => [m.seq, m.info.deliveryCount, m.redelivered]), [[2, 2, true], [4, 1, false], [5, 1, false]],
    "sequence, attempt and redelivered flag of the second fetch");
  check(nakWaitedMs >= kNakDelayMs - 50, `the nak'd message came back after ${nakWaitedMs} ms, before its ${kNakDelayMs} ms delay`);

  // Term 4, ack the others: nothing is left pending and 4 is not delivered again.
  const m4 = batch2.find((m) => m.seq === 4);
  m4.term();
  for (const m of batch2.filter((x) => x.seq !== 4)) {
    await m.ackAck({ timeout: kCallTimeoutMs });
  }
  await eventually(async () => (await consumerState(jsm, "worker")).num_ack_pending === 0, kCallTimeoutMs, "no acks pending on worker");
  // A fetch that expires empty (the server ends it with a 408 status).
  const emptyFetch = [];
  await within((async () => {
    for await (const m of await worker.fetch({ max_messages: 1, expires: 1000 })) emptyFetch.push(delivery(m));
  })(), kCallTimeoutMs, "a fetch with nothing to deliver to expire");
  const afterTerm = await consumerState(jsm, "worker");
  t.step("term", { fetched_after_term: emptyFetch, consumer: afterTerm });
  checkEqual(emptyFetch.length, 0, "messages delivered after term with nothing pending");
  checkEqual(afterTerm.num_ack_pending, 0, "acks pending after term");
  checkEqual(afterTerm.ack_floor_stream_seq, 5, "the ack floor after term");

  // Consume: a continuous pull delivers new messages as they are published.
  const consumer = await worker.consume({ max_messages: 10, expires: 2000 });
  for (let i = 6; i <= 8; i++) {
    await js.publish("pull.more", `p${i}`);
  }
  const consumed = await take(consumer, 3, kCallTimeoutMs, "consumed messages");
  for (const m of consumed) {
    await m.ackAck({ timeout: kCallTimeoutMs });
  }
  // stop(), not close(): close() waits for the iterator to be drained, which take() does not do.
  consumer.stop();
  t.step("consume", { delivered: consumed.map(delivery) });
  checkEqual(consumed.map((m) => [m.seq, m.info.deliveryCount]), [[6, 1], [7, 1], [8, 1]], "sequence and attempt of consumed messages");

  // Working: a message held for longer than its 2 s ack_wait, with +WPI every 300 ms, is not
  // redelivered meanwhile, although a second pull waits for it all that time.
  await js.publish("pull.slow", "held");
  const slow = await js.consumers.get(kStream, "slow");
  const [held] = await take(await slow.fetch({ max_messages: 1, expires: 2000 }), 1, kCallTimeoutMs, "a message for slow");
  const waiting = await slow.fetch({ max_messages: 1, expires: 3000 });
  const redelivered = [];
  const drained = within((async () => {
    for await (const m of waiting) redelivered.push(delivery(m));
  })(), kCallTimeoutMs, "the second pull on slow to expire");
  for (let i = 0; i < 9; i++) {
    await delay(300);
    held.working();
  }
  const heldAck = await held.ackAck({ timeout: kCallTimeoutMs });
  await drained;
  const slowState = await consumerState(jsm, "slow");
  t.step("working", { delivered: delivery(held), ack_sync: heldAck, redelivered_meanwhile: redelivered, consumer: slowState });
  checkEqual([held.seq, held.info.deliveryCount], [9, 1], "sequence and attempt of the held message");
  checkEqual(heldAck, true, "the AckSync after working");
  checkEqual(redelivered, [], "redeliveries of a message kept alive with working()");
  checkEqual(slowState.delivered_consumer_seq, 1, "deliveries on slow");

  await jsm.streams.delete(kStream);
  await nc.close();
});
