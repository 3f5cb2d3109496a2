// A build-cache handler for protocol tests that knows nothing of any store:
// outputs go to plain files named by their output ID in one directory, hits
// come from a Map. The protocol session is tested against this, so its
// tests say what the session does whatever the storage behind it (the
// stores have their own contract suite: test/buildcache/contract.test.ts).
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Hit } from "../../src/cacheprog/protocol.ts";
import type { CacheHandler, PutWriter } from "../../src/cacheprog/session.ts";

export interface StubHandler extends CacheHandler {
  /** What was stored, by action ID. */
  readonly stored: Map<string, Hit>;
  /** Every call, in order: "get <id>", "put <id>", "close". */
  readonly calls: string[];
}

export function stubHandler(dir: string): StubHandler {
  const stored = new Map<string, Hit>();
  const calls: string[] = [];
  let seq = 0;
  return {
    stored,
    calls,
    readMayBlock: () => true,
    get(actionID) {
      calls.push(`get ${actionID}`);
      return stored.get(actionID) ?? null;
    },
    put(actionID, outputID, size): PutWriter {
      calls.push(`put ${actionID}`);
      const part = join(dir, `${outputID}.${++seq}.part`);
      let fd: number | null = openSync(part, "w");
      let written = 0;
      const drop = () => {
        if (fd === null) return;
        closeSync(fd);
        fd = null;
        unlinkSync(part);
      };
      return {
        write(bytes) {
          written += writeSync(fd!, bytes);
        },
        commit() {
          if (written !== size) {
            drop();
            throw new Error(`stub: ${written} bytes written, ${size} announced`);
          }
          closeSync(fd!);
          fd = null;
          const diskPath = join(dir, outputID);
          renameSync(part, diskPath);
          stored.set(actionID, { outputID, size, timeNanos: BigInt(Date.now()) * 1_000_000n, diskPath });
          return diskPath;
        },
        abort: drop,
      };
    },
    close() {
      calls.push("close");
    },
  };
}
