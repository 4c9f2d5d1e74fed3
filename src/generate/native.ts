// Emits native/generated/protocol.h: the spec's settings and message table for the core.
import type {Spec} from '../spec/model.js'
import {sizeOf} from '../spec/wire.js'
import {tableOf} from './typescript.js'

export function emitProtocolHeader(spec: Spec, header: string): string {
  const table = tableOf(spec)
  const s = spec.server
  const queueNotice = spec.messages.find((m) => m.name === s.queueNotice)
  const rows = spec.messages.map((m) => {
    const size = sizeOf({kind: 'named', name: m.name}, {...table, structs: new Map([...table.structs, [m.name, {name: m.name, fields: m.fields, at: m.at}]])})
    return `      {${m.id}, ${size.min}, ${size.max}},  // ${m.name}`
  })
  return `${header}
#pragma once
#include <cstdint>
#include <thread>

#include "config.h"

namespace iocpgen {
namespace generated {

constexpr const char* kSpecName = "${spec.name}";
constexpr const char* kSpecVersion = "${spec.version}";

enum class MessageId : uint16_t {
${spec.messages.map((m) => `  ${m.name} = ${m.id},`).join('\n')}
};

// How often clients are expected to send (the core enforces idleTimeout).
constexpr uint32_t kHeartbeatMs = ${s.heartbeatMs};

// The engine's configuration from the spec. Payload bounds are checked natively before
// JavaScript sees a frame.
inline EngineConfig spec_config() {
  EngineConfig c;
  c.workers = ${s.workers === 0 ? 'int(std::thread::hardware_concurrency() ? std::thread::hardware_concurrency() : 2)' : s.workers};
  c.accept_backlog = ${s.acceptBacklog};
  c.listen_backlog = ${s.listenBacklog};
  c.max_connections = ${s.maxConnections};
  c.io_contexts = ${s.ioContexts};
  c.buffer_size = ${s.bufferSize};
  c.recv_depth = ${s.recvDepth};
  c.send_depth = ${s.sendDepth};
  c.max_frame = ${spec.maxFrame};
  c.send_queue_limit = ${s.sendQueueLimit};
  c.zero_byte_recv = ${s.zeroByteRecv};
  c.socket_reuse = ${s.socketReuse};
  c.drop_when_slow = ${s.slowClient === 'drop'};
  c.per_ip_max_connections = ${s.perIp.maxConnections};
  c.per_ip_connects_per_sec = ${s.perIp.connectsPerSecond};
  c.per_ip_ban_ms = ${s.perIp.banForMs};
  c.login_queue = ${s.whenFull === 'queue' ? s.loginQueue : 0};  // whenFull: ${s.whenFull}
  c.queue_notice_type = ${queueNotice ? `${queueNotice.id};  // ${queueNotice.name}` : '0;  // no queueNotice'}
  c.idle_timeout_ms = ${s.idleTimeoutMs};
  c.drain_timeout_ms = ${s.drainTimeoutMs};
  c.frame_timeout_ms = ${s.frameTimeoutMs};
  c.host = "${s.host}";
  c.port = ${s.port};
  c.messages = {
${rows.join('\n')}
  };
  return c;
}

}  // namespace generated
}  // namespace iocpgen
`
}
