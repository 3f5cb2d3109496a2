// The landing worker: a thread of its own on which pack frames are landed
// (pack-frame.ts), so decompressing, hashing and writing a few thousand
// files never delay the answers the go command is waiting for on the main
// thread, and cost no thread-pool round trip per file. Started by
// pack-lander.ts, which owns the protocol below; the binary carries this
// file as an entry point of its own (scripts/build.ts).
//
//   main -> worker   LandRequest: a frame and its entries, for one cache dir
//   worker -> main   LandReply: one per entry, as soon as it is landed or
//                    failed; then { id, done } for the frame; and
//                    { id, trouble } when the cache directory could not take
//                    a write (the output went to the overflow directory)

import { createDiskStore, type DiskStore } from "./disk.ts";
import { landFrame, type EntryResult, type FrameJob } from "./pack-frame.ts";

export interface LandRequest extends FrameJob {
  id: number;
  dir: string;
  overflowDir: string;
}

export type LandReply =
  /** wrote: bytes the local store grew by (its usage estimate). */
  | { id: number; i: number; r: EntryResult; wrote: number }
  | { id: number; done: true }
  | { id: number; trouble: string; code?: string };

declare const self: Worker;

const stores = new Map<string, DiskStore>();
let current = 0;

function storeFor(dir: string, overflowDir: string): DiskStore {
  const key = `${dir}\0${overflowDir}`;
  let s = stores.get(key);
  if (!s) {
    const onTrouble = (err: Error) => post({ id: current, trouble: err.message, code: (err as NodeJS.ErrnoException).code });
    s = createDiskStore({ dir, overflowDir, onTrouble });
    stores.set(key, s);
  }
  return s;
}

function post(m: LandReply): void {
  self.postMessage(m);
}

self.onmessage = (ev: MessageEvent<LandRequest>) => {
  const job = ev.data;
  current = job.id;
  try {
    const store = storeFor(job.dir, job.overflowDir);
    let before = store.bytesWritten;
    landFrame(store, job, (i, r) => {
      post({ id: job.id, i, r, wrote: store.bytesWritten - before });
      before = store.bytesWritten;
    });
  } finally {
    post({ id: job.id, done: true });
  }
};
