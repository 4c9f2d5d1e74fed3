// node-echo: the undecoded Node `net` peer, the fastest Node can be. Splits the stream into
// u32le length frames (split or coalesced across chunks) and writes each whole frame back
// without decoding its payload; node-echo-decoding.mjs is the typed server.
import net from 'node:net';

import { listen, pauseUntilDrained } from './serve.mjs';

const MAX_FRAME = 16 * 1024 * 1024; // reject absurd lengths instead of buffering forever


const server = net.createServer({ noDelay: true }, (sock) => {
  let pending = null; // bytes of an incomplete frame carried to the next chunk
  sock.on('data', (chunk) => {
    let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    let off = 0;
    sock.cork(); // one writev per chunk, but still one write() per frame
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (len < 2 || len > MAX_FRAME) { sock.destroy(); return; }
      if (buf.length - off < 4 + len) break;
      const frame = buf.subarray(off, off + 4 + len);
      const type = frame.readUInt16LE(4); // a framed server dispatches on the type id
      void type;
      sock.write(frame);
      off += 4 + len;
    }
    sock.uncork();
    // Copy the tail so a small remainder does not pin the whole chunk.
    if (off < buf.length) pending = Buffer.from(buf.subarray(off));
    pauseUntilDrained(sock);
  });
  sock.on('error', () => {}); // resets from churning clients are normal
});

listen(server);
