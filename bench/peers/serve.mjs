// What every Node peer does around its connection handler: the --port argument, listening
// with the line the harness waits for, pausing a socket until its writes drain, and exiting
// on SIGTERM/SIGINT.

/** The value after `name` on the command line, or `dflt`. */
export function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

/** Backpressure: stops reading from a socket whose writes are queued until they flush. */
export function pauseUntilDrained(sock) {
  if (sock.writableNeedDrain) {
    sock.pause();
    sock.once('drain', () => sock.resume());
  }
}

/** Listens on --port (0: any), prints "listening on port N", exits 0 on a stop signal. */
export function listen(server, host = '::') {
  const port = Number(arg('--port', '0'));
  const dual = host === '::' ? { ipv6Only: false } : {};
  server.listen({ port, host, ...dual, backlog: 65535 }, () => {
    process.stdout.write(`listening on port ${server.address().port}\n`);
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => { server.close(); process.exit(0); });
  }
}
