// Core NATS with nats.js: connect, publish/subscribe, wildcards, UNSUB with max, no echo, queue
// groups, request/reply, no responders and headers.
import { headers } from "nats";
import { check, checkEqual, connectTo, eventually, expectError, kCallTimeoutMs, run, take, text, within } from "./lib.mjs";

const kWaitMs = 3000;

run("core", 20000, async (t, opts) => {
  const nc = await connectTo(opts);
  t.step("connect", { headers: nc.info.headers === true, jetstream: nc.info.jetstream === true });
  check(nc.info.headers === true, "the server announces headers support in INFO");

  // Publish/subscribe: every message, in order, with its subject and payload.
  {
    const sub = nc.subscribe("core.plain");
    for (const body of ["one", "two", "three"]) {
      nc.publish("core.plain", body);
    }
    const got = await take(sub, 3, kWaitMs, "core.plain messages");
    const seen = got.map((m) => ({ subject: m.subject, data: text(m.data) }));
    t.step("pub_sub", { received: seen });
    checkEqual(seen.map((m) => m.data), ["one", "two", "three"], "payloads in publish order");
    sub.unsubscribe();
  }

  // Wildcards: `*` matches one token, `>` one or more; a last message on a subject both match
  // marks the end, so nothing else can still be on its way.
  {
    const star = nc.subscribe("core.w.*");
    const tail = nc.subscribe("core.w.>");
    for (const subject of ["core.w.a", "core.w.a.b", "core.x.a", "core.w", "core.w.end"]) {
      nc.publish(subject, subject);
    }
    const starGot = await take(star, 2, kWaitMs, "core.w.* messages");
    const tailGot = await take(tail, 3, kWaitMs, "core.w.> messages");
    const starSubjects = starGot.map((m) => m.subject);
    const tailSubjects = tailGot.map((m) => m.subject);
    t.step("wildcards", { star: starSubjects, tail: tailSubjects });
    checkEqual(starSubjects, ["core.w.a", "core.w.end"], "core.w.* receives");
    checkEqual(tailSubjects, ["core.w.a", "core.w.a.b", "core.w.end"], "core.w.> receives");
    star.unsubscribe();
    tail.unsubscribe();
  }

  // UNSUB with max: the subscription ends by itself after 2 messages.
  {
    const sub = nc.subscribe("core.max", { max: 2 });
    for (const body of ["m1", "m2", "m3"]) {
      nc.publish("core.max", body);
    }
    const got = [];
    await within((async () => {
      for await (const m of sub) got.push(text(m.data));
    })(), kWaitMs, "the max-2 subscription to end");
    t.step("unsub_max", { received: got, closed: sub.isClosed() });
    checkEqual(got, ["m1", "m2"], "a subscription with max 2 receives");
  }

  // No echo: a connection with echo off does not receive its own messages, only others'.
  {
    const quiet = await connectTo(opts, { noEcho: true });
    const sub = quiet.subscribe("core.echo");
    await quiet.flush();
    quiet.publish("core.echo", "own");
    await quiet.flush();
    nc.publish("core.echo", "other");
    const got = await take(sub, 1, kWaitMs, "core.echo message");
    t.step("no_echo", { received: got.map((m) => text(m.data)) });
    checkEqual(text(got[0].data), "other", "the first message a no-echo connection receives");
    await quiet.close();
  }

  // Queue groups: three members on separate connections and one plain subscriber; each message
  // reaches exactly one member, and the plain subscriber gets all of them.
  {
    const kCount = 30;
    const members = [];
    for (let i = 0; i < 3; i++) {
      const conn = await connectTo(opts);
      const seen = [];
      const sub = conn.subscribe("core.q", { queue: "workers", callback: (_, m) => seen.push(text(m.data)) });
      members.push({ conn, sub, seen });
    }
    const all = nc.subscribe("core.q");
    await Promise.all(members.map((m) => m.conn.flush()));
    await nc.flush();
    for (let i = 0; i < kCount; i++) {
      nc.publish("core.q", `q${i}`);
    }
    const plain = await take(all, kCount, kWaitMs, "core.q messages on the plain subscription");
    const total = () => members.reduce((n, m) => n + m.seen.length, 0);
    await eventually(() => total() >= kCount, kWaitMs, `${kCount} messages across the queue members`);
    // A flush on every member's connection is a round trip behind anything still in flight.
    await Promise.all(members.map((m) => m.conn.flush()));
    const delivered = members.flatMap((m) => m.seen);
    const distinct = new Set(delivered);
    t.step("queue_group", {
      plain_received: plain.length,
      members_received: delivered.length,
      distinct: distinct.size,
    });
    checkEqual(plain.length, kCount, "the plain subscriber's count");
    checkEqual(delivered.length, kCount, "messages delivered across the queue group");
    checkEqual(distinct.size, kCount, "distinct messages across the queue group (none twice)");
    all.unsubscribe();
    await Promise.all(members.map((m) => m.conn.close()));
  }

  // Request/reply: a responder answers on the request's reply subject, headers included.
  {
    const responder = nc.subscribe("core.svc", {
      callback: (_, m) => {
        const h = headers();
        h.set("Served-By", "core-responder");
        m.respond(`echo:${text(m.data)}`, { headers: h });
      },
    });
    await nc.flush();
    const reply = await nc.request("core.svc", "hello", { timeout: kCallTimeoutMs });
    t.step("request_reply", { data: text(reply.data), served_by: reply.headers?.get("Served-By") ?? null });
    checkEqual(text(reply.data), "echo:hello", "the reply");
    checkEqual(reply.headers?.get("Served-By"), "core-responder", "the reply's header");
    responder.unsubscribe();
  }

  // A request nobody listens to fails at once with the 503 no-responders status.
  {
    const err = await expectError(nc.request("core.nobody", "anyone?", { timeout: kCallTimeoutMs }), "a request without responders");
    t.step("no_responders", { code: err.code });
    checkEqual(err.code, "503", "the no-responders error code");
  }

  // Headers round trip: repeated keys keep their order, an empty payload stays empty.
  {
    const sub = nc.subscribe("core.h");
    const h = headers();
    h.append("X-Loft", "one");
    h.append("X-Loft", "two");
    h.set("Trace-Id", "abc-123");
    nc.publish("core.h", "with headers", { headers: h });
    const only = headers();
    only.set("Only", "headers");
    nc.publish("core.h", undefined, { headers: only });
    const [first, second] = await take(sub, 2, kWaitMs, "core.h messages");
    const observed = {
      x_loft: first.headers?.values("X-Loft") ?? null,
      trace_id: first.headers?.get("Trace-Id") ?? null,
      data: text(first.data),
      second_only: second.headers?.get("Only") ?? null,
      second_size: second.data.length,
    };
    t.step("headers", observed);
    checkEqual(observed.x_loft, ["one", "two"], "a repeated header's values");
    checkEqual(observed.trace_id, "abc-123", "Trace-Id");
    checkEqual(observed.data, "with headers", "the payload beside headers");
    checkEqual(observed.second_only, "headers", "the header of a message without payload");
    checkEqual(observed.second_size, 0, "the payload size of a headers-only message");
    sub.unsubscribe();
  }

  await nc.close();
  t.step("closed");
});
