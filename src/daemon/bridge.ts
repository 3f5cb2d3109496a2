// `gostash connect`: the bridge between a `go` command (our stdin/stdout)
// and the daemon's plugin socket. It does not parse the protocol: bytes are
// copied both ways.
//
// - stdin -> socket: Bun's socket write() accepts only what the kernel takes
//   and does not queue the rest, so the remainder is resent on `drain` and
//   stdin is not read again until it is out (backpressure towards `go`).
// - socket -> stdout: written synchronously; a blocked stdout blocks the
//   socket reads (backpressure towards the daemon). If stdout is non-blocking
//   and full (EAGAIN), the socket is paused and the write retried.
// - EOF on stdin: everything is sent, then the socket's write side is shut
//   down (half-close); the daemon answers what is pending and hangs up.
// - The daemon hanging up before our stdin ended means it went away mid-build:
//   say so once on stderr and exit 1, so `go` fails with a clear message
//   instead of waiting.

import { writeSync } from "node:fs";
import { formatPluginAddress, type PluginAddress } from "./address.ts";

export type BridgeResult =
  | { kind: "unreachable"; error: Error }
  | { kind: "done"; code: number };

type Sock = Bun.Socket<undefined>;

export async function runBridge(addr: PluginAddress, dialTimeoutMs: number): Promise<BridgeResult> {
  let stdinDone = false;
  let sockClosed = false;
  let lostMessage: string | null = null;
  let stdoutBroken = false;
  let wakeDrain: (() => void) | null = null;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  // Output that stdout did not take yet (only when stdout is non-blocking).
  const outQueue: Uint8Array[] = [];
  let retryTimer: ReturnType<typeof setTimeout> | null = null;

  const wake = () => {
    const w = wakeDrain;
    wakeDrain = null;
    w?.();
  };

  const end = () => {
    if (outQueue.length && !stdoutBroken) return; // finished once stdout drains
    finished();
  };

  const writeOut = (s: Sock, chunk: Uint8Array): void => {
    let off = 0;
    while (off < chunk.length) {
      try {
        off += writeSync(1, chunk, off, chunk.length - off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") {
          outQueue.push(chunk.subarray(off));
          s.pause();
          retryTimer ??= setTimeout(() => retryOut(s), 1);
          return;
        }
        // `go` is gone (EPIPE): nothing left to bridge.
        stdoutBroken = true;
        outQueue.length = 0;
        s.terminate();
        finished();
        return;
      }
    }
  };

  const retryOut = (s: Sock): void => {
    retryTimer = null;
    const pending = outQueue.splice(0);
    for (let i = 0; i < pending.length; i++) {
      writeOut(s, pending[i]!);
      if (outQueue.length || stdoutBroken) {
        outQueue.push(...pending.slice(i + 1));
        return;
      }
    }
    if (sockClosed) finished();
    else s.resume();
  };

  const lost = (why: string) => {
    if (stdinDone || lostMessage) return;
    lostMessage = `gostash connect: the daemon at ${formatPluginAddress(addr)} ${why} before the go command was done (was it stopped or killed?)`;
  };

  const handler: Bun.SocketHandler<undefined> = {
    data(s, chunk) {
      if (outQueue.length) outQueue.push(chunk);
      else writeOut(s, chunk);
    },
    drain() {
      wake();
    },
    end(s) {
      // The daemon is done talking. Normal only after our own EOF.
      lost("closed the connection");
      if (!stdinDone) s.terminate();
    },
    close(_s, err) {
      sockClosed = true;
      if (err) lost(`dropped the connection (${err.message})`);
      else lost("closed the connection");
      wake();
      end();
    },
    error(_s, err) {
      lost(`failed (${err.message})`);
    },
    connectError() {},
  };

  let sock: Sock;
  try {
    const connecting =
      addr.kind === "unix"
        ? Bun.connect({ unix: addr.path, allowHalfOpen: true, socket: handler })
        : Bun.connect({ hostname: addr.hostname, port: addr.port, allowHalfOpen: true, socket: handler });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${dialTimeoutMs}ms`)), dialTimeoutMs);
    });
    connecting.then((s) => {
      if (timedOut) s.terminate();
    }, () => {});
    try {
      sock = await Promise.race([connecting, timeout]);
    } catch (err) {
      timedOut = true;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    return { kind: "unreachable", error: err as Error };
  }
  sock.setNoDelay?.(true);

  // stdin -> socket, one chunk at a time.
  const pump = (async () => {
    const reader = Bun.stdin.stream().getReader();
    try {
      for (;;) {
        const { value, done: eof } = await reader.read();
        if (eof || sockClosed) break;
        let off = 0;
        while (off < value.length && !sockClosed) {
          const n = sock.write(value, off, value.length - off);
          if (n < 0) break; // closed; `close` reports it
          off += n;
          if (off < value.length) await new Promise<void>((r) => (wakeDrain = r));
        }
      }
    } catch (err) {
      lost(`could not be written to (${(err as Error).message})`);
    }
    if (!sockClosed && !lostMessage) {
      stdinDone = true;
      sock.shutdown();
    }
  })();

  await done;
  void pump;
  if (lostMessage && !stdoutBroken) {
    process.stderr.write(`${lostMessage}\n`);
    return { kind: "done", code: 1 };
  }
  return { kind: "done", code: stdoutBroken ? 1 : 0 };
}
