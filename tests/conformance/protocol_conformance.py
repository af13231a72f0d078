#!/usr/bin/env python3
"""loft wire protocol conformance test, written from docs/protocol.md alone.

It is a client of protocol version 1 (its HELLO offers 1..1, so loftd, which speaks 1 and 2,
answers in version 1's layouts): it checks that what version 1 specifies still holds byte for
byte. The worked examples it checks are version 1's (docs/protocol.md, section 11 shows the
HELLO of a 1..2 client and a HELLO_OK of version 2; a 1..1 client's differ only there).

Usage: protocol_conformance.py PATH/TO/loftd

Starts its own loftd instances (ephemeral port, temp data dir), runs the checks,
prints one line per check and a final "N passed, M failed" line.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

TIMEOUT = 10.0

# ---------------------------------------------------------------- constants (doc sections 4, 8)
HELLO, CREATE_TOPIC, DELETE_TOPIC, LIST_TOPICS, DESCRIBE_TOPIC, PUBLISH, FETCH, PING = range(1, 9)
ERROR = 0x8000
HELLO_OK, CREATE_TOPIC_OK, DELETE_TOPIC_OK, LIST_TOPICS_OK = 0x8001, 0x8002, 0x8003, 0x8004
DESCRIBE_TOPIC_OK, PUBLISH_OK, FETCH_OK, PONG = 0x8005, 0x8006, 0x8007, 0x8008

E_OK, E_MALFORMED, E_TOO_LARGE, E_VERSION, E_HANDSHAKE, E_UNKNOWN_TYPE = 0, 1, 2, 3, 4, 5
E_INVALID_REQUEST, E_INVALID_NAME, E_NOT_FOUND, E_EXISTS = 10, 11, 12, 13
E_MSG_TOO_LARGE, E_ID_TOO_LARGE, E_KEY_TOO_LARGE, E_HEADERS_TOO_LARGE = 14, 15, 16, 17

# ---------------------------------------------------------------- results
PASSED = 0
FAILED = 0
REPLY_FLAGS = []  # header flags of every frame received from the server


def check(name, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print("PASS  %s" % name)
    else:
        FAILED += 1
        print("FAIL  %s%s" % (name, ("  -- " + detail) if detail else ""))
    sys.stdout.flush()
    return cond


def note(text):
    print("      note: %s" % text)
    sys.stdout.flush()


# ---------------------------------------------------------------- encoder (doc section 2, 3, 5, 6)
def u8(v): return struct.pack("<B", v)
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def i64(v): return struct.pack("<q", v)


def b(x):
    return x.encode() if isinstance(x, str) else bytes(x)


def str16(s):
    s = b(s)
    assert len(s) <= 0xFFFF
    return u16(len(s)) + s


def bytes32(s):
    s = b(s)
    return u32(len(s)) + s


def frame(ftype, cid, body=b"", flags=0):
    return u32(8 + len(body)) + u16(ftype) + u16(flags) + u32(cid) + body


def enc_message(id=b"", key=b"", headers=(), payload=b""):
    out = str16(id) + str16(key) + u16(len(headers))
    for name, value in headers:
        out += str16(name) + bytes32(value)
    return out + bytes32(payload)


def hello_body(min_v=1, max_v=1, name="conformance.py"):
    return u16(min_v) + u16(max_v) + str16(name)


def create_body(name, dedup_window_ms=0, dedup_conflict=0):
    """CREATE_TOPIC: name, dedup_window_ms (0 = server default), dedup_conflict (0 duplicate, 1 error)."""
    return str16(name) + u64(dedup_window_ms) + u8(dedup_conflict)


def publish_body(topic, messages):
    return str16(topic) + u32(len(messages)) + b"".join(enc_message(**m) for m in messages)


def fetch_body(topic, offset=0, max_messages=0, max_bytes=0):
    return str16(topic) + u64(offset) + u32(max_messages) + u32(max_bytes)


def msg_size(m):
    """Doc 5.1/10: id + key + header names and values + payload."""
    return (len(b(m.get("id", b""))) + len(b(m.get("key", b""))) +
            sum(len(b(n)) + len(b(v)) for n, v in m.get("headers", ())) +
            len(b(m.get("payload", b""))))


# ---------------------------------------------------------------- decoder (doc section 12)
class Malformed(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise Malformed("need %d bytes at %d, body is %d" % (n, self.p, len(self.d)))
        r = self.d[self.p:self.p + n]
        self.p += n
        return r

    def remaining(self):
        return len(self.d) - self.p

    def u8(self): return struct.unpack("<B", self.take(1))[0]
    def u16(self): return struct.unpack("<H", self.take(2))[0]
    def u32(self): return struct.unpack("<I", self.take(4))[0]
    def u64(self): return struct.unpack("<Q", self.take(8))[0]
    def i64(self): return struct.unpack("<q", self.take(8))[0]
    def str16(self): return self.take(self.u16())
    def bytes32(self): return self.take(self.u32())

    def count(self, min_item):
        c = self.u32()
        if c * min_item > self.remaining():
            raise Malformed("count %d x %d > %d remaining" % (c, min_item, self.remaining()))
        return c

    def end(self):
        if self.p != len(self.d):
            raise Malformed("%d trailing bytes" % (len(self.d) - self.p))


def dec_topicinfo(r):
    return dict(name=r.str16(), first_offset=r.u64(), next_offset=r.u64(), messages=r.u64(),
                bytes=r.u64(), created_at_ms=r.i64(), dedup_window_ms=r.u64(),
                dedup_conflict=r.u8(), max_age_ms=r.u64(), max_bytes=r.u64(),
                max_messages=r.u64())


def dec_message(r):
    m = dict(id=r.str16(), key=r.str16())
    hc = r.u16()
    if hc * 6 > r.remaining():
        raise Malformed("header_count too big")
    m["headers"] = [(r.str16(), r.bytes32()) for _ in range(hc)]
    m["payload"] = r.bytes32()
    return m


def decode_body(ftype, body):
    r = Reader(body)
    if ftype == ERROR:
        out = dict(code=r.u16(), message=r.str16())
    elif ftype == HELLO_OK:
        out = dict(version=r.u16(), max_frame_size=r.u32(), max_message_size=r.u32(),
                   max_id_size=r.u16(), max_key_size=r.u16(), max_headers_size=r.u32(),
                   server_name=r.str16(), durability=r.u8())
    elif ftype in (CREATE_TOPIC_OK, DESCRIBE_TOPIC_OK):
        out = dec_topicinfo(r)
    elif ftype == LIST_TOPICS_OK:
        out = [dec_topicinfo(r) for _ in range(r.count(75))]
    elif ftype == PUBLISH_OK:
        out = []
        for _ in range(r.count(11)):
            code, flags, off = r.u16(), r.u8(), r.u64()
            if flags & ~1:
                raise Malformed("PublishResult flags 0x%02x" % flags)
            out.append((code, flags, off))
    elif ftype == FETCH_OK:
        out = dict(first_offset=r.u64(), next_offset=r.u64(), messages=[])
        for _ in range(r.count(26)):
            sm = dict(offset=r.u64(), timestamp_ms=r.i64())
            sm.update(dec_message(r))
            out["messages"].append(sm)
    elif ftype in (DELETE_TOPIC_OK, PONG):
        out = None
    else:
        raise Malformed("unknown reply type 0x%04x" % ftype)
    r.end()
    return out


# ---------------------------------------------------------------- connection
class Closed(Exception):
    pass


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.s.settimeout(TIMEOUT)
        self.cid = 100

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def next_cid(self):
        self.cid = (self.cid + 1) & 0xFFFFFFFF
        return self.cid

    def send_raw(self, data):
        self.s.sendall(data)

    def send(self, ftype, body=b"", cid=None, flags=0):
        if cid is None:
            cid = self.next_cid()
        self.send_raw(frame(ftype, cid, body, flags))
        return cid

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.s.recv(n - len(buf))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("EOF after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv(self):
        """-> (type, flags, cid, decoded body, raw frame)"""
        hdr = self._read_exact(12)
        length, ftype, flags, cid = struct.unpack("<IHHI", hdr)
        if length < 8:
            raise Malformed("length %d < 8" % length)
        body = self._read_exact(length - 8)
        REPLY_FLAGS.append(flags)
        return ftype, flags, cid, decode_body(ftype, body), hdr + body

    def request(self, ftype, body=b""):
        cid = self.send(ftype, body)
        rt, _, rcid, dec, _ = self.recv()
        if rcid != cid:
            raise AssertionError("correlation id %d != %d" % (rcid, cid))
        return rt, dec

    def is_closed(self, wait=TIMEOUT):
        """True if the peer closes (EOF/reset) with no further data."""
        self.s.settimeout(wait)
        try:
            data = self.s.recv(1)
            return data == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.s.settimeout(TIMEOUT)

    def hello(self):
        return self.request(HELLO, hello_body())


def expect_error(rt, dec, code):
    return rt == ERROR and dec["code"] == code


def desc(rt, dec):
    if rt == ERROR:
        return "ERROR code=%d msg=%r" % (dec["code"], dec["message"])
    return "type=0x%04x body=%r" % (rt, dec if not isinstance(dec, (dict, list)) or len(repr(dec)) < 300 else repr(dec)[:300])


# ---------------------------------------------------------------- daemon management
class Daemon:
    def __init__(self, loftd, config_text=None):
        self.tmp = tempfile.mkdtemp(prefix="loft-conf-")
        self.data = os.path.join(self.tmp, "data")
        os.mkdir(self.data)
        self.port_file = os.path.join(self.tmp, "port")
        args = [loftd, "--listen", "127.0.0.1:0", "--data-dir", self.data,
                "--port-file", self.port_file, "--log-level", "warn", "--http-listen", "off"]
        if config_text is not None:
            cfg = os.path.join(self.tmp, "loftd.toml")
            with open(cfg, "w") as f:
                f.write(config_text)
            args += ["--config", cfg]
        self.proc = None
        self.log = None
        try:
            self.log = open(os.path.join(self.tmp, "loftd.log"), "w+")
            self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
            self._wait_port()
        except BaseException:
            self.stop()  # never leave a daemon or a temp dir behind
            raise

    def _wait_port(self):
        self.port = None
        deadline = time.time() + 15
        previous = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("loftd exited with %d: %s" % (self.proc.returncode, self.logtext()))
            try:
                with open(self.port_file) as f:
                    txt = f.read()
                # accept a complete line, or text that stayed the same across two polls
                if txt.strip() and (txt.endswith("\n") or txt == previous):
                    self.port = int(txt.strip())
                    break
                previous = txt
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("loftd did not write its port file")

    def logtext(self):
        try:
            self.log.flush()
            self.log.seek(0)
            return self.log.read()[-2000:]
        except Exception:
            return ""

    def connect(self, handshake=True):
        c = Conn(self.port)
        if handshake:
            rt, dec = c.hello()
            if rt != HELLO_OK:
                raise AssertionError("handshake failed: " + desc(rt, dec))
            c.limits = dec
        return c

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            if self.log:
                self.log.close()
        except Exception:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def group(name, fn, *args):
    try:
        fn(*args)
    except Exception as e:  # a crashed group counts as one failure
        check("%s: completed without exception" % name, False,
              "%s: %s" % (type(e).__name__, e))
        traceback.print_exc(file=sys.stdout)


# ================================================================ checks
def t_doc_examples():
    # 11: HELLO
    want = bytes.fromhex("12 00 00 00 01 00 00 00 01 00 00 00 01 00 01 00 04 00 64 65 6d 6f")
    check("doc example: HELLO encodes byte for byte", frame(HELLO, 1, hello_body(1, 1, "demo")) == want)
    # 11: HELLO_OK (decode and re-encode)
    hok = bytes.fromhex("28 00 00 00 01 80 00 00 01 00 00 00 01 00 00 00 00 01 00 00 10 00"
                        "00 01 00 04 00 00 01 00 0b 00 6c 6f 66 74 64 20 30 2e 31 2e 30 00")
    mine = frame(HELLO_OK, 1, u16(1) + u32(16777216) + u32(1048576) + u16(256) + u16(1024) +
                 u32(65536) + str16("loftd 0.1.0") + u8(0))
    check("doc example: HELLO_OK encodes byte for byte", mine == hok)
    dec = decode_body(HELLO_OK, hok[12:])
    check("doc example: HELLO_OK decodes to documented defaults",
          dec == dict(version=1, max_frame_size=16777216, max_message_size=1048576, max_id_size=256,
                      max_key_size=1024, max_headers_size=65536, server_name=b"loftd 0.1.0",
                      durability=0), repr(dec))
    # 11: PUBLISH
    pub = bytes.fromhex("2d 00 00 00 06 00 00 00 02 00 00 00 06 00 6f 72 64 65 72 73 01 00 00 00"
                        "02 00 61 31 00 00 01 00 01 00 68 01 00 00 00 76 05 00 00 00 68 65 6c 6c 6f")
    mine = frame(PUBLISH, 2, publish_body("orders", [dict(id="a1", headers=[("h", "v")], payload="hello")]))
    check("doc example: PUBLISH encodes byte for byte", mine == pub, mine.hex())
    # 11: PUBLISH_OK
    pok = bytes.fromhex("17 00 00 00 06 80 00 00 02 00 00 00 01 00 00 00 00 00 00 2a 00 00 00 00 00 00 00")
    mine = frame(PUBLISH_OK, 2, u32(1) + u16(0) + u8(0) + u64(42))
    check("doc example: PUBLISH_OK encodes byte for byte", mine == pok)
    check("doc example: PUBLISH_OK decodes to offset 42", decode_body(PUBLISH_OK, pok[12:]) == [(0, 0, 42)])
    # 11: ERROR
    err = bytes.fromhex("1b 00 00 00 00 80 00 00 02 00 00 00 0c 00 0f 00 74 6f 70 69 63 20 6e 6f 74"
                        "20 66 6f 75 6e 64")
    mine = frame(ERROR, 2, u16(12) + str16("topic not found"))
    check("doc example: ERROR encodes byte for byte", mine == err)
    # the worked examples' annotated lengths
    check("doc example: frame length fields match the annotated sizes",
          [struct.unpack("<I", x[:4])[0] for x in (want, hok, pub, pok, err)] == [18, 40, 45, 23, 27])


def t_doc_examples_live(d):
    """Send the doc's example frames to the real server and compare replies with the doc."""
    c = d.connect(handshake=False)
    try:
        # HELLO sent one byte at a time (a frame split across TCP segments)
        hello = bytes.fromhex("12 00 00 00 01 00 00 00 01 00 00 00 01 00 01 00 04 00 64 65 6d 6f")
        for i in range(len(hello)):
            c.send_raw(hello[i:i + 1])
            time.sleep(0.002)
        rt, _, rcid, dec, raw = c.recv()
        want = bytes.fromhex("28 00 00 00 01 80 00 00 01 00 00 00 01 00 00 00 00 01 00 00 10 00"
                             "00 01 00 04 00 00 01 00 0b 00 6c 6f 66 74 64 20 30 2e 31 2e 30 00")
        check("live: doc HELLO (sent byte by byte) -> server HELLO_OK identical to doc example", raw == want, raw.hex(" "))
        pub = bytes.fromhex("2d 00 00 00 06 00 00 00 02 00 00 00 06 00 6f 72 64 65 72 73 01 00 00 00"
                            "02 00 61 31 00 00 01 00 01 00 68 01 00 00 00 76 05 00 00 00 68 65 6c 6c 6f")
        c.send_raw(pub)
        rt, _, rcid, dec, raw = c.recv()
        check("live: doc PUBLISH to missing 'orders' -> ERROR 12, cid 2, layout as doc (text may differ)",
              rt == ERROR and rcid == 2 and dec["code"] == 12 and raw[4:14] == bytes.fromhex("00 80 00 00 02 00 00 00 0c 00"),
              raw.hex(" "))
        note("server's ERROR text for it: %r" % dec["message"])
        rt, dec = c.request(CREATE_TOPIC, create_body("orders"))
        c.send_raw(pub)
        rt, _, rcid, dec, raw = c.recv()
        want = bytes.fromhex("17 00 00 00 06 80 00 00 02 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00")
        check("live: doc PUBLISH -> PUBLISH_OK identical to doc example except offset 0 instead of 42", raw == want,
              raw.hex(" "))
        rt, dec = c.request(FETCH, fetch_body("orders", 0))
        check("live: FETCH returns the doc example message",
              rt == FETCH_OK and len(dec["messages"]) == 1 and
              (dec["messages"][0]["id"], dec["messages"][0]["key"], dec["messages"][0]["headers"],
               dec["messages"][0]["payload"]) == (b"a1", b"", [(b"h", b"v")], b"hello"), desc(rt, dec))
        rt, dec = c.request(DELETE_TOPIC, str16("orders"))
        check("live: DELETE_TOPIC orders (cleanup) -> DELETE_TOPIC_OK", rt == DELETE_TOPIC_OK, desc(rt, dec))
    finally:
        c.close()


def t_name_errors(d):
    """Section 10: CREATE_TOPIC, DELETE_TOPIC and PUBLISH check the name first (invalid_name);
    DESCRIBE_TOPIC and FETCH answer topic_not_found for an invalid name."""
    c = d.connect()
    try:
        for ftype, body, label, code in (
                (DELETE_TOPIC, str16("bad name"), "DELETE_TOPIC", E_INVALID_NAME),
                (DESCRIBE_TOPIC, str16("bad name"), "DESCRIBE_TOPIC", E_NOT_FOUND),
                (FETCH, fetch_body("bad name"), "FETCH", E_NOT_FOUND),
                (PUBLISH, publish_body("bad name", [dict(payload=b"x")]), "PUBLISH (no auto-create)",
                 E_INVALID_NAME)):
            rt, dec = c.request(ftype, body)
            check("%s with invalid name -> ERROR %d" % (label, code), expect_error(rt, dec, code), desc(rt, dec))
        rt, dec = c.request(PING)
        check("connection stays open after invalid-name errors", rt == PONG, desc(rt, dec))
        # PUBLISH order of checks (section 10): invalid_request, limits, name, existence
        rt, dec = c.request(PUBLISH, str16("bad name") + u32(0))
        check("PUBLISH count 0 to an invalid name -> invalid_request (10) first",
              expect_error(rt, dec, E_INVALID_REQUEST), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("bad name", [dict(id=b"i" * 300)]))
        check("PUBLISH id too large to an invalid name -> id_too_large (15) before invalid_name",
              expect_error(rt, dec, E_ID_TOO_LARGE), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("no-such-topic", [dict(key=b"k" * 2000)]))
        check("PUBLISH key too large to a missing topic -> key_too_large (16) before topic_not_found",
              expect_error(rt, dec, E_KEY_TOO_LARGE), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("a/b", [dict(payload=b"x")]))
        check("PUBLISH valid message to an invalid name -> invalid_name (11)",
              expect_error(rt, dec, E_INVALID_NAME), desc(rt, dec))
        # section 8: message = "<text>: <detail>"
        rt, dec = c.request(PUBLISH, publish_body("x", [dict(payload=b"ok"), dict(id=b"i" * 300)]))
        want = b"message id too large: publish: message 1 id is 300 bytes, max_id_size is 256"
        check("ERROR message is '<text>: <detail>' (section 8 example)",
              expect_error(rt, dec, E_ID_TOO_LARGE) and dec["message"] == want, desc(rt, dec))
    finally:
        c.close()


def t_handshake(d):
    c = d.connect(handshake=False)
    try:
        cid = c.send(HELLO, hello_body(1, 1, "conformance"), cid=0x01020304)
        rt, fl, rcid, dec, raw = c.recv()
        check("HELLO -> HELLO_OK", rt == HELLO_OK, desc(rt, dec))
        check("HELLO_OK echoes correlation id", rcid == cid, "%#x" % rcid)
        check("HELLO_OK header flags = 0", fl == 0, "flags=%d" % fl)
        check("HELLO_OK version = 1", dec["version"] == 1, repr(dec))
        check("HELLO_OK default limits match section 9",
              (dec["max_frame_size"], dec["max_message_size"], dec["max_id_size"], dec["max_key_size"],
               dec["max_headers_size"]) == (16777216, 1048576, 256, 1024, 65536), repr(dec))
        check("HELLO_OK server_name non-empty text", len(dec["server_name"]) > 0, repr(dec["server_name"]))
        note("server_name = %r" % dec["server_name"])
        # 7.1.5: second HELLO
        rt, dec = c.request(HELLO, hello_body())
        check("second HELLO -> ERROR invalid_request (10)", expect_error(rt, dec, E_INVALID_REQUEST), desc(rt, dec))
        rt, dec = c.request(PING)
        check("connection stays open after second HELLO (PING -> PONG)", rt == PONG, desc(rt, dec))
    finally:
        c.close()

    # 7.1.2: highest common version of a wide range
    c = d.connect(handshake=False)
    try:
        rt, dec = c.request(HELLO, hello_body(0, 7))
        check("HELLO 0..7 -> HELLO_OK version 4 (the highest both speak)",
              rt == HELLO_OK and dec["version"] == 4, desc(rt, dec))
    finally:
        c.close()

    # empty client name allowed
    c = d.connect(handshake=False)
    try:
        rt, dec = c.request(HELLO, hello_body(1, 1, ""))
        check("HELLO with empty client_name -> HELLO_OK", rt == HELLO_OK, desc(rt, dec))
    finally:
        c.close()

    # header flags ignored by receiver
    c = d.connect(handshake=False)
    try:
        c.send(HELLO, hello_body(), cid=5, flags=0xFFFF)
        rt, _, rcid, dec, _ = c.recv()
        check("nonzero header flags are ignored (HELLO still OK)", rt == HELLO_OK and rcid == 5, desc(rt, dec))
    finally:
        c.close()


def t_fatal(d):
    # frame before HELLO
    c = d.connect(handshake=False)
    try:
        c.send(PING, cid=77)
        rt, _, rcid, dec, _ = c.recv()
        check("PING before HELLO -> ERROR handshake_required (4)", expect_error(rt, dec, E_HANDSHAKE), desc(rt, dec))
        check("handshake_required echoes correlation id", rcid == 77, str(rcid))
        check("connection closed after handshake_required", c.is_closed())
    finally:
        c.close()

    # CREATE_TOPIC before HELLO: must not be processed
    c = d.connect(handshake=False)
    try:
        c.send(CREATE_TOPIC, create_body("pre-hello-topic"), cid=78)
        rt, _, rcid, dec, _ = c.recv()
        check("CREATE_TOPIC before HELLO -> handshake_required (4)", expect_error(rt, dec, E_HANDSHAKE) and rcid == 78,
              desc(rt, dec))
        check("connection closed after pre-HELLO CREATE_TOPIC", c.is_closed())
    finally:
        c.close()
    c = d.connect()
    try:
        rt, dec = c.request(DESCRIBE_TOPIC, str16("pre-hello-topic"))
        check("pre-HELLO CREATE_TOPIC was not executed", expect_error(rt, dec, E_NOT_FOUND), desc(rt, dec))
    finally:
        c.close()

    # unsupported version ranges
    for lo, hi, label in ((5, 6, "5..6"), (2, 1, "min>max 2..1"), (0, 0, "0..0")):
        c = d.connect(handshake=False)
        try:
            c.send(HELLO, hello_body(lo, hi), cid=9)
            rt, _, rcid, dec, _ = c.recv()
            check("HELLO %s -> ERROR unsupported_version (3)" % label,
                  expect_error(rt, dec, E_VERSION) and rcid == 9, desc(rt, dec))
            check("connection closed after unsupported_version (%s)" % label, c.is_closed())
        finally:
            c.close()

    # frame too large: header only, announcing 0xFFFFFFFF
    c = d.connect()
    try:
        c.send_raw(u32(0xFFFFFFFF) + u16(PUBLISH) + u16(0) + u32(0xCAFEBABE))
        rt, _, rcid, dec, _ = c.recv()
        check("header length 0xFFFFFFFF -> ERROR frame_too_large (2)", expect_error(rt, dec, E_TOO_LARGE), desc(rt, dec))
        check("frame_too_large echoes that frame's correlation id", rcid == 0xCAFEBABE, "%#x" % rcid)
        check("connection closed after frame_too_large", c.is_closed())
    finally:
        c.close()

    # frame too large: exactly one byte over the limit (length + 4 = max + 1)
    c = d.connect()
    try:
        mfs = c.limits["max_frame_size"]
        c.send_raw(u32(mfs - 3) + u16(PUBLISH) + u16(0) + u32(4242))
        rt, _, rcid, dec, _ = c.recv()
        check("header length+4 = max_frame_size+1 -> frame_too_large, cid echoed",
              expect_error(rt, dec, E_TOO_LARGE) and rcid == 4242, desc(rt, dec))
        check("connection closed after frame_too_large (limit+1)", c.is_closed())
    finally:
        c.close()

    # frame too large before HELLO: which error wins? (doc does not say; just record)
    c = d.connect(handshake=False)
    try:
        c.send_raw(u32(0xFFFFFFFF) + u16(HELLO) + u16(0) + u32(31))
        rt, _, rcid, dec, _ = c.recv()
        check("oversized frame before HELLO -> frame_too_large (2) (size checked before handshake), close",
              expect_error(rt, dec, E_TOO_LARGE) and rcid == 31 and c.is_closed(), desc(rt, dec))
    finally:
        c.close()

    # unknown frame type
    c = d.connect()
    try:
        c.send(0x0042, cid=555)
        rt, _, rcid, dec, _ = c.recv()
        check("unknown type 0x0042 -> ERROR unknown_frame_type (5)", expect_error(rt, dec, E_UNKNOWN_TYPE), desc(rt, dec))
        check("unknown_frame_type echoes correlation id", rcid == 555, str(rcid))
        check("connection closed after unknown_frame_type", c.is_closed())
    finally:
        c.close()

    # unknown type with a body (server must skip/handle the body)
    c = d.connect()
    try:
        c.send(0x0100, body=b"\x00" * 20, cid=556)
        rt, _, rcid, dec, _ = c.recv()
        check("unknown type 0x0100 with 20-byte body -> unknown_frame_type (5)",
              expect_error(rt, dec, E_UNKNOWN_TYPE) and rcid == 556, desc(rt, dec))
        check("connection closed after unknown type with body", c.is_closed())
    finally:
        c.close()

    # reply type sent by client (section 12)
    c = d.connect()
    try:
        c.send(PONG, cid=557)
        rt, _, rcid, dec, _ = c.recv()
        check("client sends PONG (0x8008) -> unknown_frame_type (5)",
              expect_error(rt, dec, E_UNKNOWN_TYPE) and rcid == 557, desc(rt, dec))
        check("connection closed after client-sent reply type", c.is_closed())
    finally:
        c.close()

    # unknown type before HELLO: which error? record
    c = d.connect(handshake=False)
    try:
        c.send(0x0042, cid=558)
        rt, _, rcid, dec, _ = c.recv()
        check("unknown type before HELLO -> unknown_frame_type (5) (decoded before handshake rule), close",
              expect_error(rt, dec, E_UNKNOWN_TYPE) and rcid == 558 and c.is_closed(), desc(rt, dec))
    finally:
        c.close()

    # reply type before HELLO: decodable, so the handshake rule applies (section 12.1)
    c = d.connect(handshake=False)
    try:
        c.send(PONG, cid=559)
        rt, _, rcid, dec, _ = c.recv()
        check("PONG before HELLO -> handshake_required (4), close",
              expect_error(rt, dec, E_HANDSHAKE) and rcid == 559 and c.is_closed(), desc(rt, dec))
    finally:
        c.close()

    # malformed HELLO before handshake -> malformed_frame, not handshake_required
    c = d.connect(handshake=False)
    try:
        c.send(HELLO, body=u16(1) + u16(1) + u16(50) + b"ab", cid=560)
        rt, _, rcid, dec, _ = c.recv()
        check("malformed HELLO before handshake -> malformed_frame (1), close",
              expect_error(rt, dec, E_MALFORMED) and rcid == 560 and c.is_closed(), desc(rt, dec))
    finally:
        c.close()

    # length < 8 is judged only once the whole 12-byte header has arrived
    c = d.connect()
    try:
        hdr = u32(7) + u16(PING) + u16(0) + u32(561)
        c.send_raw(hdr[:4])
        c.s.settimeout(0.5)
        try:
            early = c.s.recv(1)
        except socket.timeout:
            early = None
        finally:
            c.s.settimeout(TIMEOUT)
        check("length = 7: no reply before the 12-byte header is complete", early is None, repr(early))
        c.send_raw(hdr[4:])
        rt, _, rcid, dec, _ = c.recv()
        check("length = 7 completed header -> malformed_frame (1) echoing its cid",
              expect_error(rt, dec, E_MALFORMED) and rcid == 561, desc(rt, dec))
    except Closed as e:
        check("length = 7 completed header -> malformed_frame (1)", False, "closed without ERROR: %s" % e)
    finally:
        c.close()

    # malformed: length < 8
    c = d.connect()
    try:
        c.send_raw(u32(7) + u16(PING) + u16(0) + u32(600))
        rt, _, rcid, dec, _ = c.recv()
        check("length = 7 -> ERROR malformed_frame (1)", expect_error(rt, dec, E_MALFORMED), desc(rt, dec))
        note("length<8: echoed cid = %d (sent 600)" % rcid)
        check("connection closed after length<8", c.is_closed())
    except Closed as e:
        check("length = 7 -> ERROR malformed_frame (1)", False, "connection closed without ERROR: %s" % e)
    finally:
        c.close()

    # malformed: PING with one extra body byte
    c = d.connect()
    try:
        c.send(PING, body=b"\x00", cid=601)
        rt, _, rcid, dec, _ = c.recv()
        check("PING with 1-byte body -> malformed_frame (1), cid echoed",
              expect_error(rt, dec, E_MALFORMED) and rcid == 601, desc(rt, dec))
        check("connection closed after malformed PING", c.is_closed())
    finally:
        c.close()

    # malformed: truncated CREATE_TOPIC string
    c = d.connect()
    try:
        c.send(CREATE_TOPIC, body=u16(10) + b"abc", cid=602)
        rt, _, rcid, dec, _ = c.recv()
        check("CREATE_TOPIC with string past end of body -> malformed_frame (1)",
              expect_error(rt, dec, E_MALFORMED) and rcid == 602, desc(rt, dec))
        check("connection closed after truncated string", c.is_closed())
    finally:
        c.close()

    # malformed: PUBLISH count 0xFFFFFFFF
    c = d.connect()
    try:
        c.send(PUBLISH, body=str16("x") + u32(0xFFFFFFFF), cid=603)
        rt, _, rcid, dec, _ = c.recv()
        check("PUBLISH count 0xFFFFFFFF -> malformed_frame (1)",
              expect_error(rt, dec, E_MALFORMED) and rcid == 603, desc(rt, dec))
        check("connection closed after huge count", c.is_closed())
    finally:
        c.close()

    # malformed: trailing byte after a valid PUBLISH body
    c = d.connect()
    try:
        c.send(PUBLISH, body=publish_body("x", [dict(payload=b"p")]) + b"\x00", cid=604)
        rt, _, rcid, dec, _ = c.recv()
        check("PUBLISH with a trailing byte -> malformed_frame (1)",
              expect_error(rt, dec, E_MALFORMED) and rcid == 604, desc(rt, dec))
        check("connection closed after trailing byte", c.is_closed())
    finally:
        c.close()

    # fatal error: later frames in the same write are not processed
    c = d.connect()
    try:
        c.send_raw(frame(0x0042, 700) + frame(CREATE_TOPIC, 701, create_body("after-fatal")))
        rt, _, rcid, dec, _ = c.recv()
        check("unknown type followed by CREATE_TOPIC in one write -> only ERROR 5",
              expect_error(rt, dec, E_UNKNOWN_TYPE) and rcid == 700, desc(rt, dec))
        check("...and then closed (no reply for the later frame)", c.is_closed())
    finally:
        c.close()
    c = d.connect()
    try:
        rt, dec = c.request(DESCRIBE_TOPIC, str16("after-fatal"))
        check("frame after a fatal error was not processed", expect_error(rt, dec, E_NOT_FOUND), desc(rt, dec))
    finally:
        c.close()

    # fatal error behind pipelined requests (section 7.3): earlier requests answered (PUBLISH
    # after its fsync), then the ERROR, then close; later frames not processed.
    c = d.connect()
    try:
        rt, dec = c.request(CREATE_TOPIC, create_body("pipe-fatal"))
        check("CREATE_TOPIC pipe-fatal", rt == CREATE_TOPIC_OK, desc(rt, dec))
        c.send_raw(frame(PUBLISH, 801, publish_body("pipe-fatal", [dict(payload=b"before")])) +
                   frame(PING, 802) + frame(0x0042, 803) +
                   frame(PUBLISH, 804, publish_body("pipe-fatal", [dict(payload=b"after")])))
        got = []
        try:
            while True:
                rt, _, rcid, dec, _ = c.recv()
                got.append((rcid, rt, dec["code"] if rt == ERROR else None))
        except Closed:
            pass
        check("pipelined PUBLISH, PING, unknown type, PUBLISH -> PUBLISH_OK and PONG, then ERROR 5, then close",
              len(got) == 3 and sorted(got[:2]) == [(801, PUBLISH_OK, None), (802, PONG, None)] and
              got[2] == (803, ERROR, E_UNKNOWN_TYPE), repr(got))
    finally:
        c.close()
    c = d.connect()
    try:
        rt, dec = c.request(DESCRIBE_TOPIC, str16("pipe-fatal"))
        check("only the PUBLISH before the fatal frame was stored (next_offset 1)",
              rt == DESCRIBE_TOPIC_OK and dec["next_offset"] == 1, desc(rt, dec))
        c.request(DELETE_TOPIC, str16("pipe-fatal"))
    finally:
        c.close()


def t_topics(d):
    c = d.connect()
    try:
        t0 = int(time.time() * 1000)
        rt, dec = c.request(LIST_TOPICS)
        check("LIST_TOPICS on empty server -> LIST_TOPICS_OK count 0", rt == LIST_TOPICS_OK and dec == [], desc(rt, dec))

        rt, dec = c.request(CREATE_TOPIC, create_body("orders"))
        t1 = int(time.time() * 1000)
        ok = rt == CREATE_TOPIC_OK
        check("CREATE_TOPIC orders -> CREATE_TOPIC_OK", ok, desc(rt, dec))
        if ok:
            check("CREATE_TOPIC_OK TopicInfo: name, offsets 0, messages 0, bytes 0",
                  (dec["name"], dec["first_offset"], dec["next_offset"], dec["messages"], dec["bytes"]) ==
                  (b"orders", 0, 0, 0, 0), repr(dec))
            check("CREATE_TOPIC_OK created_at_ms is the current time (+-5 s)",
                  t0 - 5000 <= dec["created_at_ms"] <= t1 + 5000, "%d vs %d" % (dec["created_at_ms"], t0))
            created = dec["created_at_ms"]

        rt, dec = c.request(CREATE_TOPIC, create_body("orders"))
        check("CREATE_TOPIC existing -> ERROR topic_exists (13)", expect_error(rt, dec, E_EXISTS), desc(rt, dec))

        for name, label in ((b"", "empty"), (b"a b", "space"), (b".", "'.'"), (b"..", "'..'"),
                            (b"a/b", "slash"), (b"x" * 250, "250 bytes"), (b"caf\xc3\xa9", "non-ASCII"),
                            (b"a\x00b", "NUL")):
            rt, dec = c.request(CREATE_TOPIC, create_body(name))
            check("CREATE_TOPIC invalid name (%s) -> ERROR invalid_name (11)" % label,
                  expect_error(rt, dec, E_INVALID_NAME), desc(rt, dec))
        for name, label in ((b"x" * 249, "249 bytes"), (b"A-Z_a.z-09", "all char classes"), (b"...", "'...'")):
            rt, dec = c.request(CREATE_TOPIC, create_body(name))
            check("CREATE_TOPIC valid name (%s) -> CREATE_TOPIC_OK" % label, rt == CREATE_TOPIC_OK, desc(rt, dec))

        for n in (b"b", b"B", b"_z", b"a"):
            c.request(CREATE_TOPIC, create_body(n))
        rt, dec = c.request(LIST_TOPICS)
        names = [t["name"] for t in dec] if rt == LIST_TOPICS_OK else []
        check("LIST_TOPICS -> LIST_TOPICS_OK", rt == LIST_TOPICS_OK, desc(rt, dec))
        want = sorted([b"orders", b"x" * 249, b"A-Z_a.z-09", b"...", b"b", b"B", b"_z", b"a"])
        check("LIST_TOPICS sorted bytewise, contains all created", names == want, repr(names))

        rt, dec = c.request(DESCRIBE_TOPIC, str16("orders"))
        check("DESCRIBE_TOPIC orders -> DESCRIBE_TOPIC_OK with same TopicInfo",
              rt == DESCRIBE_TOPIC_OK and dec["name"] == b"orders" and dec["created_at_ms"] == created and
              dec["next_offset"] == 0, desc(rt, dec))
        rt, dec = c.request(DESCRIBE_TOPIC, str16("nope"))
        check("DESCRIBE_TOPIC missing -> ERROR topic_not_found (12)", expect_error(rt, dec, E_NOT_FOUND), desc(rt, dec))

        rt, dec = c.request(DELETE_TOPIC, str16("b"))
        check("DELETE_TOPIC b -> DELETE_TOPIC_OK (empty body)", rt == DELETE_TOPIC_OK and dec is None, desc(rt, dec))
        rt, dec = c.request(DELETE_TOPIC, str16("b"))
        check("DELETE_TOPIC again -> ERROR topic_not_found (12)", expect_error(rt, dec, E_NOT_FOUND), desc(rt, dec))
        rt, dec = c.request(LIST_TOPICS)
        check("deleted topic no longer listed", rt == LIST_TOPICS_OK and b"b" not in [t["name"] for t in dec],
              desc(rt, dec))
        # recreate after delete starts at 0
        c.request(PUBLISH, publish_body("a", [dict(payload=b"1"), dict(payload=b"2")]))
        rt, dec = c.request(DELETE_TOPIC, str16("a"))
        check("DELETE_TOPIC of non-empty topic -> DELETE_TOPIC_OK", rt == DELETE_TOPIC_OK, desc(rt, dec))
        rt, dec = c.request(CREATE_TOPIC, create_body("a"))
        check("recreated topic is new (next_offset 0, messages 0)",
              rt == CREATE_TOPIC_OK and dec["next_offset"] == 0 and dec["messages"] == 0, desc(rt, dec))
        rt, dec = c.request(FETCH, fetch_body("a", 0))
        check("recreated topic has no old messages",
              rt == FETCH_OK and dec["messages"] == [] and dec["next_offset"] == 0, desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("a", [dict(payload=b"new")]))
        check("first publish to recreated topic gets offset 0",
              rt == PUBLISH_OK and dec == [(0, 0, 0)], desc(rt, dec))
    finally:
        c.close()


BATCH = [
    dict(id=b"id-0", key=b"key\x00zero", headers=[("content-type", b"application/octet-stream"),
                                                  ("x-bin", b"\x00\x01\x02\xff"), ("x-bin", b"")],
         payload=b"\x00\x00binary\x00payload\xff\xfe\x00"),
    dict(id=b"", key=b"", headers=[], payload=b""),
    dict(id=b"\x00", key=b"k", headers=[("h", b"v")], payload=bytes(range(256)) * 4),
    dict(id=b"id-3", key=b"", headers=[("", b"empty-name")], payload=b"\x00"),
    dict(id=b"x" * 256, key=b"y" * 1024, headers=[("a" * 100, b"b" * 1000)], payload=b"\x00" * 5000),
]


def t_publish_fetch(d):
    c = d.connect()
    try:
        rt, dec = c.request(CREATE_TOPIC, create_body("events"))
        check("CREATE_TOPIC events", rt == CREATE_TOPIC_OK, desc(rt, dec))
        t0 = int(time.time() * 1000)
        rt, dec = c.request(PUBLISH, publish_body("events", BATCH))
        t1 = int(time.time() * 1000)
        check("PUBLISH batch of %d -> PUBLISH_OK" % len(BATCH), rt == PUBLISH_OK, desc(rt, dec))
        if rt == PUBLISH_OK:
            check("PUBLISH_OK has one result per message", len(dec) == len(BATCH), repr(dec))
            check("every PublishResult code 0, duplicate 0", all(r[0] == 0 and r[1] == 0 for r in dec), repr(dec))
            check("offsets consecutive from 0", [r[2] for r in dec] == list(range(len(BATCH))), repr(dec))

        # pipelining: several PUBLISH frames back-to-back before any read
        cids = [0xFFFFFFF0 + i for i in range(6)]  # includes wrap-ish large ids
        cids[-1] = 0
        pipelined = []
        raw = b""
        for i, cid in enumerate(cids):
            msgs = [dict(id=b"p%d-%d" % (i, j), key=b"pk%d" % i, headers=[("seq", u32(j))],
                         payload=b"\x00pipe\x00%d.%d" % (i, j)) for j in range(i + 1)]
            pipelined.append(msgs)
            raw += frame(PUBLISH, cid, publish_body("events", msgs))
        c.send_raw(raw)
        replies = {}
        for _ in cids:
            rt, _, rcid, dec, _ = c.recv()
            replies[rcid] = (rt, dec)
        check("pipelined: one reply per correlation id (incl. cid 0)", sorted(replies) == sorted(cids),
              repr(sorted(replies)))
        check("pipelined: all replies PUBLISH_OK with all codes 0",
              all(replies.get(cid, (0,))[0] == PUBLISH_OK and all(r[0] == 0 for r in replies[cid][1]) for cid in cids))
        # offsets: each batch consecutive; batches in send order, disjoint, covering 5..5+21
        expected_all = []
        ok_consec = True
        starts = []
        for i, cid in enumerate(cids):
            rt, dec = replies.get(cid, (None, []))
            offs = [r[2] for r in dec] if rt == PUBLISH_OK else []
            if len(offs) != i + 1 or offs != list(range(offs[0], offs[0] + i + 1)):
                ok_consec = False
            else:
                starts.append(offs[0])
            expected_all += offs
        check("pipelined: each batch has consecutive offsets", ok_consec)
        total = sum(len(m) for m in pipelined)
        check("pipelined: offsets cover %d..%d without gaps" % (len(BATCH), len(BATCH) + total - 1),
              sorted(expected_all) == list(range(len(BATCH), len(BATCH) + total)), repr(sorted(expected_all)))
        check("pipelined: batches stored in request order (same connection)", starts == sorted(starts), repr(starts))

        # FETCH everything back
        all_msgs = list(BATCH)
        order = sorted(range(len(cids)), key=lambda i: replies[cids[i]][1][0][2])
        for i in order:
            all_msgs += pipelined[i]
        rt, dec = c.request(FETCH, fetch_body("events", 0, 0, 0))
        check("FETCH from 0 -> FETCH_OK", rt == FETCH_OK, desc(rt, dec))
        if rt == FETCH_OK:
            got = dec["messages"]
            check("FETCH_OK first_offset 0, next_offset %d" % len(all_msgs),
                  dec["first_offset"] == 0 and dec["next_offset"] == len(all_msgs), repr((dec["first_offset"], dec["next_offset"])))
            check("FETCH returns all %d messages" % len(all_msgs), len(got) == len(all_msgs), str(len(got)))
            check("FETCH offsets ascending 0..n-1", [m["offset"] for m in got] == list(range(len(got))))
            mism = []
            for i, (g, w) in enumerate(zip(got, all_msgs)):
                want = dict(id=b(w.get("id", b"")), key=b(w.get("key", b"")),
                            headers=[(b(n), b(v)) for n, v in w.get("headers", [])], payload=b(w.get("payload", b"")))
                have = dict(id=g["id"], key=g["key"], headers=g["headers"], payload=g["payload"])
                if have != want:
                    mism.append(i)
            check("FETCH: id, key, headers (order, repeats), payload identical byte for byte", not mism,
                  "mismatch at %r" % mism)
            check("FETCH timestamps are publish time (+-5 s)",
                  all(t0 - 5000 <= m["timestamp_ms"] <= int(time.time() * 1000) + 5000 for m in got))

            # TopicInfo bytes/messages accounting
            rt2, ti = c.request(DESCRIBE_TOPIC, str16("events"))
            want_bytes = sum(msg_size(m) for m in all_msgs)
            check("DESCRIBE_TOPIC messages/next_offset after publishing",
                  rt2 == DESCRIBE_TOPIC_OK and ti["messages"] == len(all_msgs) and ti["next_offset"] == len(all_msgs),
                  desc(rt2, ti))
            check("TopicInfo.bytes = sum(id+key+header names+values+payload) = %d" % want_bytes,
                  rt2 == DESCRIBE_TOPIC_OK and ti["bytes"] == want_bytes, desc(rt2, ti))

        # FETCH from the middle, max_messages
        rt, dec = c.request(FETCH, fetch_body("events", 2, 3, 0))
        check("FETCH offset 2 max_messages 3 -> offsets 2,3,4",
              rt == FETCH_OK and [m["offset"] for m in dec["messages"]] == [2, 3, 4], desc(rt, dec))
        # max_bytes: at least one message even if larger
        rt, dec = c.request(FETCH, fetch_body("events", 4, 0, 1))
        check("FETCH max_bytes 1 -> exactly one (oversized) message",
              rt == FETCH_OK and [m["offset"] for m in dec["messages"]] == [4], desc(rt, dec))
        # max_bytes (section 10): add while the running total is below max_bytes; the message
        # that reaches or crosses it is included, then stop.
        sizes = [msg_size(m) for m in BATCH]

        def model(start, max_bytes):
            out, total = [], 0
            for off in range(start, len(sizes)):
                if total >= max_bytes:
                    break
                out.append(off)
                total += sizes[off]
            return out

        s0, s1, s2, s3 = sizes[:4]
        for start, mb, label in ((0, s0, "size(m0)"), (0, s0 + 1, "size(m0)+1 (m1 is empty)"),
                                 (0, s0 + s1 + s2 - 1, "one short of m0+m1+m2"),
                                 (0, s0 + s1 + s2, "m0+m1+m2"), (2, s2, "size(m2) from 2"),
                                 (2, s2 + 1, "size(m2)+1 from 2"), (2, s2 + s3, "m2+m3 from 2"),
                                 (2, s2 + s3 + 1, "m2+m3+1 from 2")):
            rt, dec = c.request(FETCH, fetch_body("events", start, 0, mb))
            got = [m["offset"] for m in dec["messages"]] if rt == FETCH_OK else None
            want = model(start, mb)
            check("FETCH max_bytes = %s (%d) -> offsets %r" % (label, mb, want), got == want, repr(got))

        # beyond the end
        n = len(all_msgs)
        for off in (n, n + 100, 0xFFFFFFFFFFFFFFFF):
            rt, dec = c.request(FETCH, fetch_body("events", off))
            check("FETCH at offset %d (>= next_offset) -> FETCH_OK empty" % off,
                  rt == FETCH_OK and dec["messages"] == [] and dec["next_offset"] == n, desc(rt, dec))

        rt, dec = c.request(FETCH, fetch_body("nope", 0))
        check("FETCH missing topic -> ERROR topic_not_found (12)", expect_error(rt, dec, E_NOT_FOUND), desc(rt, dec))

        # PUBLISH errors
        rt, dec = c.request(PUBLISH, publish_body("missing-topic", [dict(payload=b"x")]))
        check("PUBLISH to missing topic -> ERROR topic_not_found (12)", expect_error(rt, dec, E_NOT_FOUND), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("", [dict(payload=b"x")]))
        check("PUBLISH with empty topic name -> ERROR invalid_request (10)",
              expect_error(rt, dec, E_INVALID_REQUEST), desc(rt, dec))
        rt, dec = c.request(PUBLISH, str16("events") + u32(0))
        check("PUBLISH with count 0 -> ERROR invalid_request (10)",
              expect_error(rt, dec, E_INVALID_REQUEST), desc(rt, dec))

        # default limits: id 257, key 1025
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(payload=b"ok"), dict(id=b"i" * 257)]))
        check("PUBLISH message 1 id 257 bytes -> ERROR id_too_large (15)",
              expect_error(rt, dec, E_ID_TOO_LARGE), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(key=b"k" * 1025)]))
        check("PUBLISH key 1025 bytes -> ERROR key_too_large (16)", expect_error(rt, dec, E_KEY_TOO_LARGE), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(payload=b"\x00" * (1048576 + 1))]))
        check("PUBLISH payload 1 MiB + 1 -> ERROR message_too_large (14)",
              expect_error(rt, dec, E_MSG_TOO_LARGE), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(headers=[("h", b"v" * 65535)])]))
        check("PUBLISH headers 65536 bytes (== limit) -> PUBLISH_OK", rt == PUBLISH_OK, desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(headers=[("h", b"v" * 65536)])]))
        check("PUBLISH headers 65537 bytes -> ERROR headers_too_large (17)",
              expect_error(rt, dec, E_HEADERS_TOO_LARGE), desc(rt, dec))
        # order of checks within a message: payload, id, key, headers
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(id=b"i" * 300, key=b"k" * 2000,
                                                                  headers=[("h", b"v" * 70000)],
                                                                  payload=b"p" * 1048577)]))
        check("all limits broken in one message -> message_too_large (payload checked first)",
              expect_error(rt, dec, E_MSG_TOO_LARGE), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(id=b"i" * 300, key=b"k" * 2000,
                                                                  headers=[("h", b"v" * 70000)])]))
        check("id, key, headers broken -> id_too_large (id checked before key/headers)",
              expect_error(rt, dec, E_ID_TOO_LARGE), desc(rt, dec))
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(key=b"k" * 2000, headers=[("h", b"v" * 70000)])]))
        check("key, headers broken -> key_too_large", expect_error(rt, dec, E_KEY_TOO_LARGE), desc(rt, dec))
        # earlier message's violation wins over a later one
        rt, dec = c.request(PUBLISH, publish_body("events", [dict(key=b"k" * 2000), dict(id=b"i" * 300)]))
        check("message 0 key too large, message 1 id too large -> key_too_large (request order)",
              expect_error(rt, dec, E_KEY_TOO_LARGE), desc(rt, dec))
        rt, dec = c.request(DESCRIBE_TOPIC, str16("events"))
        check("nothing of the failed PUBLISH requests was stored (next_offset = %d)" % (n + 1),
              rt == DESCRIBE_TOPIC_OK and dec["next_offset"] == n + 1, desc(rt, dec))

        # PING -> PONG
        cid = c.send(PING, cid=0xDEADBEEF)
        rt, fl, rcid, dec, raw = c.recv()
        check("PING -> PONG with echoed cid", rt == PONG and rcid == 0xDEADBEEF, desc(rt, dec))
        check("PONG is exactly 12 bytes (length 8)", len(raw) == 12 and raw[:4] == u32(8), raw.hex())
        # mixed pipelining: FETCH, PING, DESCRIBE back-to-back
        c.send_raw(frame(PING, 11) + frame(FETCH, 12, fetch_body("events", 0, 1, 0)) +
                   frame(DESCRIBE_TOPIC, 13, str16("events")) + frame(PING, 14))
        got = {}
        for _ in range(4):
            rt, _, rcid, dec, _ = c.recv()
            got[rcid] = rt
        check("pipelined PING/FETCH/DESCRIBE/PING all answered with right types",
              got == {11: PONG, 12: FETCH_OK, 13: DESCRIBE_TOPIC_OK, 14: PONG}, repr(got))
    finally:
        c.close()


def t_configured(loftd):
    cfg = ('auto_create_topics = true\n'
           'max_frame_size = "64KiB"\n'
           'max_message_size = "16KiB"\n'
           'max_headers_size = "4KiB"\n')
    d = Daemon(loftd, cfg)
    try:
        c = d.connect()
        try:
            lim = c.limits
            check("config: HELLO_OK reports configured limits (65536, 16384, 256, 1024, 4096)",
                  (lim["max_frame_size"], lim["max_message_size"], lim["max_id_size"], lim["max_key_size"],
                   lim["max_headers_size"]) == (65536, 16384, 256, 1024, 4096), repr(lim))
            rt, dec = c.request(PUBLISH, publish_body("auto.created", [dict(payload=b"a")]))
            check("auto_create_topics: PUBLISH to new topic -> PUBLISH_OK offset 0",
                  rt == PUBLISH_OK and dec == [(0, 0, 0)], desc(rt, dec))
            rt, dec = c.request(DESCRIBE_TOPIC, str16("auto.created"))
            check("auto_create_topics: topic now exists", rt == DESCRIBE_TOPIC_OK, desc(rt, dec))
            rt, dec = c.request(PUBLISH, publish_body("bad/name", [dict(payload=b"a")]))
            check("auto_create_topics: PUBLISH to invalid name -> invalid_name (11)",
                  expect_error(rt, dec, E_INVALID_NAME), desc(rt, dec))
            rt, dec = c.request(FETCH, fetch_body("not-there", 0))
            check("auto_create_topics: FETCH missing topic still topic_not_found (12)",
                  expect_error(rt, dec, E_NOT_FOUND), desc(rt, dec))
            rt, dec = c.request(PUBLISH, publish_body("t", [dict(payload=b"p" * 16384)]))
            check("config: payload == max_message_size accepted", rt == PUBLISH_OK, desc(rt, dec))
            rt, dec = c.request(PUBLISH, publish_body("t", [dict(payload=b"p" * 16385)]))
            check("config: payload max_message_size+1 -> message_too_large (14)",
                  expect_error(rt, dec, E_MSG_TOO_LARGE), desc(rt, dec))
            rt, dec = c.request(PUBLISH, publish_body("t", [dict(headers=[("n", b"v" * 4095)])]))
            check("config: headers == 4096 accepted", rt == PUBLISH_OK, desc(rt, dec))
            rt, dec = c.request(PUBLISH, publish_body("t", [dict(headers=[("n", b"v" * 4096)])]))
            check("config: headers 4097 -> headers_too_large (17)",
                  expect_error(rt, dec, E_HEADERS_TOO_LARGE), desc(rt, dec))
            # a frame exactly max_frame_size long is accepted
            msgs = [dict(payload=b"q" * 15000)] * 4
            body = publish_body("t", msgs)
            extra = 65536 - 12 - len(body)
            msgs.append(dict(payload=b"r" * (extra - 10)))
            body = publish_body("t", msgs)
            check("(test setup) PUBLISH frame is exactly 65536 bytes", len(body) + 12 == 65536, str(len(body) + 12))
            rt, dec = c.request(PUBLISH, body)
            check("config: PUBLISH frame of exactly max_frame_size accepted",
                  rt == PUBLISH_OK and len(dec) == 5, desc(rt, dec))
            # FETCH_OK reply must fit max_frame_size, counting exact encoded sizes: the 5 messages
            # just published take 32 + 5 x 26 + payloads > 65536 bytes, the first 4 fit.
            first = dec[0][2] if rt == PUBLISH_OK else 0
            c.send(FETCH, fetch_body("t", first, 0, 0xFFFFFFFF))
            rt, _, _, dec, raw = c.recv()
            check("config: FETCH_OK frame fits max_frame_size (%d bytes)" % len(raw),
                  rt == FETCH_OK and len(raw) <= 65536, desc(rt, dec))
            if rt == FETCH_OK:
                note("FETCH with huge max_bytes under 64KiB frame limit returned %d messages" % len(dec["messages"]))
                want = [first + i for i in range(4)]
                check("config: FETCH_OK cut to exactly the messages that fit (offsets %r)" % want,
                      [m["offset"] for m in dec["messages"]] == want,
                      repr([m["offset"] for m in dec["messages"]]))
            # one byte over
            msgs[-1] = dict(payload=b"r" * (extra - 9))
            body = publish_body("t", msgs)
            cid = c.send(PUBLISH, body, cid=999)
            rt, _, rcid, dec, _ = c.recv()
            check("config: PUBLISH frame of max_frame_size+1 -> frame_too_large (2), cid echoed",
                  expect_error(rt, dec, E_TOO_LARGE) and rcid == 999, desc(rt, dec))
            check("config: connection closed after frame_too_large", c.is_closed())
        finally:
            c.close()
    finally:
        d.stop()


def main():
    if len(sys.argv) != 2:
        print("usage: %s PATH/TO/loftd" % sys.argv[0])
        return 2
    loftd = sys.argv[1]
    started = time.time()
    group("doc examples", t_doc_examples)
    d = None
    try:
        d = Daemon(loftd)
        group("doc examples (live)", t_doc_examples_live, d)
        group("handshake", t_handshake, d)
        group("invalid names", t_name_errors, d)
        group("topics", t_topics, d)
        group("publish/fetch", t_publish_fetch, d)
        group("fatal errors", t_fatal, d)
        alive = d.proc.poll() is None
        check("default daemon still running after all tests", alive, "exit code %r" % d.proc.returncode)
    except Exception as e:
        check("default daemon: setup", False, "%s: %s" % (type(e).__name__, e))
    finally:
        if d is not None:
            d.stop()
            check("default daemon exits 0 on SIGTERM", d.proc.returncode == 0, "rc=%r" % d.proc.returncode)
    group("configured daemon", t_configured, loftd)
    check("every server frame had header flags = 0 (%d frames)" % len(REPLY_FLAGS),
          all(f == 0 for f in REPLY_FLAGS), repr(sorted(set(REPLY_FLAGS))))
    note("elapsed %.1f s" % (time.time() - started))
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
