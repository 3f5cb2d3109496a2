// The plugin socket's listener: a Unix socket (owner-only; a stale file
// left by a daemon that died is replaced, one a live daemon answers on is
// an error: two daemons must not share a path) or TCP (the real port
// reported when 0 was asked for).

import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { formatPluginAddress, type PluginAddress } from "../address.ts";

export interface Listening<T> {
  listener: Bun.SocketListener<T>;
  /** Where it listens (the real port when 0 was asked for). */
  address: PluginAddress;
}

export async function listenPlugin<T>(address: PluginAddress, socket: Bun.SocketHandler<T>): Promise<Listening<T>> {
  if (address.kind === "unix") return { listener: await listenUnix(address.path, socket), address };
  const listener = listenTcp(address, socket);
  return { listener, address: { kind: "tcp", hostname: address.hostname, port: listener.port } };
}

/** Stops accepting; the Unix socket file goes too. Open connections carry on. */
export function stopListening<T>(l: Listening<T>): void {
  l.listener.stop(false);
  if (l.address.kind !== "unix") return;
  try {
    unlinkSync(l.address.path);
  } catch {}
}

async function listenUnix<T>(path: string, socket: Bun.SocketHandler<T>): Promise<Bun.SocketListener<T>> {
  await clearStaleSocket(path);
  // Owner-only from the start (umask), and again explicitly.
  const old = process.umask(0o077);
  let listener: Bun.SocketListener<T>;
  try {
    listener = Bun.listen<T>({ unix: path, allowHalfOpen: true, socket });
  } catch (err) {
    throw new Error(`config: --plugin: cannot listen on ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  return listener;
}

function listenTcp<T>(address: PluginAddress & { kind: "tcp" }, socket: Bun.SocketHandler<T>): Bun.TCPSocketListener<T> {
  try {
    return Bun.listen<T>({ hostname: address.hostname, port: address.port, allowHalfOpen: true, exclusive: true, socket });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const inUse = code === "EADDRINUSE" || /in use|Failed to listen/i.test((err as Error).message);
    throw new Error(
      `config: --plugin: cannot listen on ${formatPluginAddress(address)}${inUse ? " (address in use?)" : ""}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * A socket file left behind by a daemon that died is removed; one that a live
 * daemon answers on is an error (two daemons must not share a path), and so
 * is anything there that is not a socket: a mistyped --plugin must never
 * delete a file of the user's.
 */
async function clearStaleSocket(path: string): Promise<void> {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isSocket()) throw new Error(`config: --plugin: ${path} exists and is not a socket (${st.isDirectory() ? "a directory" : "a file"}); name a path that is free or holds a socket`);
  const alive = await Bun.connect({ unix: path, socket: { data() {}, error() {} } }).then(
    (s) => {
      s.terminate();
      return true;
    },
    () => false,
  );
  if (alive) throw new Error(`config: --plugin: another daemon is already serving on ${path}`);
  unlinkSync(path);
}
