// The hello: what `gostash connect` tells the daemon about the go command
// behind a connection, so the daemon can serve it as plugin mode serves its
// own go command: its toolchain, for toolchain marks
// (store/toolchain-marks.ts; the go command exports GOVERSION, GOOS and
// GOARCH to the plugin it starts, which is the bridge, not the daemon), and
// its command line where the OS shows it, for the status page.
//
// Negotiated, so either side may be older than the other (a daemon left
// running across an upgrade):
//
// - a daemon that reads hellos says so in its capability line: the usual
//   one with one more field, `"GostashHello":1` (daemonCapabilityLine;
//   `go` ignores fields it does not know, should it ever see that line);
// - a bridge with something to say waits for that line after its auth line
//   and, if the field is there, sends one line before anything of go's:
//
//     GOSTASH-HELLO {"GOVERSION":"go1.26.0","GOOS":"linux","GOARCH":"amd64","command":"go build ./..."}
//
// - the daemon looks for it at the start of each conversation: the first
//   bytes that cannot begin it are go's (server/first-line.ts), so a bridge
//   that says nothing costs nothing. A hello it cannot read is logged and
//   the connection goes on without it.
//
// A daemon that does not advertise (an older one) is never sent one: to it
// the line would be a broken request.

import { CAPABILITY_LINE } from "../cacheprog/protocol.ts";
import type { DiskMark } from "./disk-mark.ts";

export const HELLO_PREFIX = "GOSTASH-HELLO ";
/** A hello may not be longer than this. */
export const MAX_HELLO_LINE = 4096;
/** A command line longer than this is cut (ci/job.ts shortCommand cuts at 120 already). */
const MAX_COMMAND = 200;

/**
 * A daemon's capability line: hellos, when it reads them, and its disk
 * (daemon/disk-mark.ts), when a bridge that shares it may answer local hits.
 */
export function daemonCapabilityLine(o: { hello: boolean; disk: DiskMark | null }): string {
  if (!o.hello && !o.disk) return CAPABILITY_LINE;
  const extra = [o.hello ? `"GostashHello":1` : "", o.disk ? `"GostashDisk":${JSON.stringify(o.disk)}` : ""].filter(Boolean);
  return `${CAPABILITY_LINE.trimEnd().slice(0, -1)},${extra.join(",")}}\n`;
}

/** What a daemon's capability line offers a bridge. */
export interface DaemonCapability {
  /** It reads a hello. */
  hello: boolean;
  /** Its build cache's directory and mark, when it offers them. */
  disk: DiskMark | null;
}

/** The go command's environment variables a hello carries. */
const GO_VARS = ["GOVERSION", "GOOS", "GOARCH"] as const;

/** What a connection's hello said. */
export interface ClientHello {
  /** The go command's variables, as given (store/toolchain-marks.ts toolchainOf reads them). */
  goEnv: Partial<Record<(typeof GO_VARS)[number], string>>;
  /** Its command line, short ("go test ./..."), when the bridge could see it. */
  command: string | null;
}

export const NO_HELLO: ClientHello = { goEnv: {}, command: null };

/**
 * The hello line for the go command that started us (its environment and
 * command line), or null if there is nothing to say.
 */
export function helloLine(env: Record<string, string | undefined>, command: string | null = null): string | null {
  const goEnv = GO_VARS.every((k) => env[k]?.trim()) ? { GOVERSION: env.GOVERSION, GOOS: env.GOOS, GOARCH: env.GOARCH } : {};
  if (!Object.keys(goEnv).length && !command) return null;
  return `${HELLO_PREFIX}${JSON.stringify({ ...goEnv, ...(command ? { command: command.slice(0, MAX_COMMAND) } : {}) })}\n`;
}

/** What a daemon's capability line (without its newline) offers; nothing, if it is not one. */
export function readCapability(line: string): DaemonCapability {
  let m: { GostashHello?: unknown; GostashDisk?: { dir?: unknown; mark?: unknown } } | null;
  try {
    m = JSON.parse(line);
  } catch {
    return { hello: false, disk: null };
  }
  const d = m?.GostashDisk;
  const disk = typeof d?.dir === "string" && typeof d.mark === "string" && d.dir && d.mark ? { dir: d.dir, mark: d.mark } : null;
  return { hello: m?.GostashHello === 1, disk };
}

/** Reads a hello line (prefix included, newline excluded); throws with the reason if it is not one. */
export function parseHello(line: string): ClientHello {
  if (!line.startsWith(HELLO_PREFIX)) throw new Error("not a hello line");
  let body: unknown;
  try {
    body = JSON.parse(line.slice(HELLO_PREFIX.length));
  } catch (err) {
    throw new Error(`hello is not JSON (${(err as Error).message})`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("hello is not a JSON object");
  const fields = body as Record<string, unknown>;
  const goEnv: ClientHello["goEnv"] = {};
  for (const k of GO_VARS) if (typeof fields[k] === "string") goEnv[k] = fields[k];
  const command = typeof fields.command === "string" && fields.command ? fields.command.slice(0, MAX_COMMAND) : null;
  return { goEnv, command };
}
