// node-echo-decoding: Node `net` typed echo peer, the server a competent Node developer writes
// for bench/specs/echo.yaml in an afternoon. Unlike node-echo.mjs it does what a typed server
// must: decodes every payload into a message object (checking the length prefix against the
// spec's bound), hands it to a handler and encodes the reply from that object. It is written
// to be fast, not weakened: the payload bytes are views, not copies, replies are sized first
// and encoded into one buffer, and each data event ends in one socket.write.
import net from 'node:net';

import { listen, pauseUntilDrained } from './serve.mjs';

// Echo (id 1) is `data: bytes<4096>`: a u16 length prefix (bound ≤ 65535), then the bytes.
const ECHO = 1;
const ECHO_MAX = 4096;
const MAX_FRAME = 64 * 1024; // framing.maxFrame default, header included


// Returns the message, or null when the payload breaks the spec (caller closes).
function decodeEcho(buf, at, len) {
  if (len < 2) return null;
  const n = buf[at] | (buf[at + 1] << 8);
  if (n > ECHO_MAX || n !== len - 2) return null; // over the bound, or not consumed exactly
  // A view, not a copy: the handler replies before this event returns, so nothing outlives it.
  return { data: buf.subarray(at + 2, at + 2 + n) };
}

const echoSize = (msg) => 8 + msg.data.length;

function encodeEcho(msg, out, at) {
  const n = msg.data.length;
  out.writeUInt32LE(4 + n, at);
  out[at + 4] = ECHO;
  out[at + 5] = ECHO >>> 8;
  out[at + 6] = n;
  out[at + 7] = n >>> 8;
  out.set(msg.data, at + 8);
  return at + 8 + n;
}

const onEcho = (msg, reply) => reply(msg);

const server = net.createServer({ noDelay: true }, (sock) => {
  let pending = null; // bytes of an incomplete frame carried to the next chunk
  let replies = [];
  let size = 0;
  const reply = (msg) => { replies.push(msg); size += echoSize(msg); };
  sock.on('data', (chunk) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    let off = 0;
    while (buf.length - off >= 6) {
      const len = buf.readUInt32LE(off);
      // Checked before the rest arrives so a bad length never makes us buffer.
      if (len < 2 || 4 + len > MAX_FRAME) { sock.destroy(); return; }
      if (buf.length - off < 4 + len) break;
      const type = buf[off + 4] | (buf[off + 5] << 8);
      if (type !== ECHO) { sock.destroy(); return; }
      const msg = decodeEcho(buf, off + 6, len - 2);
      if (!msg) { sock.destroy(); return; }
      onEcho(msg, reply);
      off += 4 + len;
    }
    if (replies.length) {
      // Sized first, so all of this event's replies go out in one buffer and one write.
      const out = Buffer.allocUnsafe(size);
      let at = 0;
      for (const m of replies) at = encodeEcho(m, out, at);
      replies = [];
      size = 0;
      sock.write(out);
    }
    // Copy the tail so a small remainder does not pin the whole chunk.
    if (off < buf.length) pending = Buffer.from(buf.subarray(off));
    pauseUntilDrained(sock);
  });
  sock.on('error', () => {}); // resets from churning clients are normal
});

listen(server);
