// Records what NATS clients send, as seeds for nats_session_fuzz: a loopback proxy in front of
// a NATS server that writes each connection's client-to-server bytes, behind a 0 control byte,
// to OUT_DIR/PREFIX-N when the connection closes (connections of 64 KiB or more are skipped).
//
//   node tests/fuzz/record_nats_seeds.mjs SERVER_PORT OUT_DIR PREFIX PORT_FILE
//
// It writes the port it listens on to PORT_FILE; point a scenario at it, e.g. with a
// nats-server -js on SERVER_PORT:
//   tests/nats/run_reference.sh --target nats://127.0.0.1:$(cat PORT_FILE) --only js_pull \
//     --c-dir build/asan/tests/nats/c
// then stop it (Ctrl-C). The committed seeds are core, js_manage, js_pull, js_redeliver,
// js_push, c_core and c_js recorded this way against nats-server 2.9.10.
import net from "node:net";
import { writeFileSync } from "node:fs";

const [serverPort, outDir, prefix, portFile] = process.argv.slice(2);
if (!serverPort || !outDir || !prefix || !portFile) {
  process.stderr.write("usage: node record_nats_seeds.mjs SERVER_PORT OUT_DIR PREFIX PORT_FILE\n");
  process.exit(2);
}
let connections = 0;
const proxy = net.createServer((client) => {
  const id = ++connections;
  const chunks = [];
  const upstream = net.connect(Number(serverPort), "127.0.0.1");
  client.on("data", (d) => {
    chunks.push(d);
    upstream.write(d);
  });
  upstream.on("data", (d) => client.write(d));
  client.on("close", () => {
    const seed = Buffer.concat([Buffer.from([0]), ...chunks]);
    if (seed.length > 1 && seed.length < 65536) writeFileSync(`${outDir}/${prefix}-${id}`, seed);
    upstream.destroy();
  });
  upstream.on("close", () => client.destroy());
  client.on("error", () => {});
  upstream.on("error", () => {});
});
proxy.listen(0, "127.0.0.1", () => writeFileSync(portFile, String(proxy.address().port)));
