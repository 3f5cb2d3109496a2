// A pack landing worker that dies (test/store/pack-lander.test.ts): it
// reports the first entry of the first frame it is given as failed, then
// throws, as a worker that hit a bug would. The lander must fail the
// entries it had not reported and land later frames without it.
declare const self: Worker;

self.onmessage = (ev: MessageEvent<{ id: number }>) => {
  self.postMessage({ id: ev.data.id, i: 0, r: { ok: false, bad: false, message: "first entry: not landed" }, wrote: 0 });
  throw new Error("dying-land-worker: boom");
};
