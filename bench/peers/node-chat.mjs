// node-chat: Node `net` peer for the fan-out workload, speaking the chat framing of
// bench/specs/chat.yaml for the messages the workload uses: Login -> LoginOk + Ack,
// GroupJoin -> Ack, GroupSay -> GroupDeliver to every other member (encoded once) + Ack.
import net from 'node:net';

import { listen } from './serve.mjs';

const MAX_FRAME = 8 * 1024;
const T = { Login: 1, LoginOk: 2, Ack: 3, GroupJoin: 6, GroupSay: 8, GroupDeliver: 9 };


const groups = new Map(); // group name -> Set of client
let online = 0;

function frame(type, payload) {
  const f = Buffer.allocUnsafe(6 + payload.length);
  f.writeUInt32LE(payload.length + 2, 0);
  f.writeUInt16LE(type, 4);
  payload.copy(f, 6);
  return f;
}

function ack(seq, status) {
  const p = Buffer.allocUnsafe(5);
  p.writeUInt32LE(seq, 0);
  p[4] = status;
  return frame(T.Ack, p);
}

// A u16-prefixed UTF-8 string at off: [value, next offset], or throws on a short payload.
function str(p, off, max) {
  const n = p.readUInt16LE(off);
  if (n > max || off + 2 + n > p.length) throw new Error('bad string');
  return [p.toString('utf8', off + 2, off + 2 + n), off + 2 + n];
}

function handle(c, type, p) {
  if (type === T.Login) {
    const seq = p.readUInt32LE(0);
    c.userId = p.readUInt32LE(4);
    online++;
    const ok = Buffer.allocUnsafe(8);
    ok.writeUInt32LE(c.userId, 0);
    ok.writeUInt32LE(online, 4);
    c.sock.write(frame(T.LoginOk, ok));
    c.sock.write(ack(seq, 0));
  } else if (type === T.GroupJoin) {
    const seq = p.readUInt32LE(0);
    const [group] = str(p, 4, 32);
    if (!groups.has(group)) groups.set(group, new Set());
    groups.get(group).add(c);
    c.groups.add(group);
    c.sock.write(ack(seq, 0));
  } else if (type === T.GroupSay) {
    const seq = p.readUInt32LE(0);
    const [group, at] = str(p, 4, 32);
    const [text] = str(p, at, 1024);
    const members = groups.get(group);
    if (!members?.has(c)) return void c.sock.write(ack(seq, 3));
    // GroupDeliver {group, from, seq, text}: built once, written to each member.
    const g = Buffer.from(group);
    const t = Buffer.from(text);
    const out = Buffer.allocUnsafe(2 + g.length + 8 + 2 + t.length);
    let o = out.writeUInt16LE(g.length, 0);
    o += g.copy(out, o);
    o = out.writeUInt32LE(c.userId, o);
    o = out.writeUInt32LE(seq, o);
    o = out.writeUInt16LE(t.length, o);
    t.copy(out, o);
    const f = frame(T.GroupDeliver, out);
    for (const m of members) if (m !== c) m.sock.write(f);
    c.sock.write(ack(seq, 0));
  } else {
    c.sock.destroy(); // not part of this workload
  }
}

const server = net.createServer({ noDelay: true }, (sock) => {
  const c = { sock, userId: 0, groups: new Set() };
  let pending = null;
  sock.on('data', (chunk) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    let off = 0;
    try {
      while (buf.length - off >= 6) {
        const len = buf.readUInt32LE(off);
        if (len < 2 || len > MAX_FRAME) throw new Error('bad frame');
        if (buf.length - off < 4 + len) break;
        handle(c, buf.readUInt16LE(off + 4), buf.subarray(off + 6, off + 4 + len));
        off += 4 + len;
      }
    } catch {
      sock.destroy();
      return;
    }
    if (off < buf.length) pending = Buffer.from(buf.subarray(off));
  });
  sock.on('close', () => {
    if (c.userId) online--;
    for (const g of c.groups) groups.get(g)?.delete(c);
  });
  sock.on('error', () => {});
});

listen(server, '127.0.0.1');
