#!/usr/bin/env bun
// The data floor of a remote-warm build (scripts/bench/s3.ts): download,
// decompress, write and verify the packs a run needs, alone, with no go
// command. It does what gostash's pack reader does for a fresh machine
// (src/buildcache/pack-reader.ts), as fast as it can: read the heads (all
// at once) and the first key's lead, then stream every segment of every
// pack they name through the same segment line (one landing at a time, the
// next GETs sent ahead; the first segment of the lead's pack from the lead),
// landing each entry verified into an empty Go-format cache.
//
//   bun scripts/bench/pack-floor.ts --endpoint URL --bucket B --prefix P --dir D KEY...
//
// Prints one JSON line: {"ms":..., "cpuMs":..., "requests":..., "bytes":..., "entries":..., "bad":...}
// where ms is measured from the first request to the last entry landed (no
// process start-up, no module loading), and cpuMs is the CPU every thread of
// the process used over the same span (user + system). AWS credentials come from the
// environment, as for gostash.
import { parseArgs } from "node:util";
import { createS3Client } from "../../src/s3/client.ts";
import { createDiskStore } from "../../src/store/disk.ts";
import { FrameWindow, landSegment } from "../../src/store/pack-stream.ts";
import { decodeHead, headObject, leadCovers, leadObject, MAX_HEAD_BYTES, packObject, readerSegments, type PackRef, type Segment } from "../../src/store/packs.ts";
import { SegmentLine, type LineJob } from "../../src/buildcache/pack-segments.ts";
import type { S3Object } from "../../src/s3/client.ts";
import { createLogger } from "../../src/util/log.ts";
import { Metrics } from "../../src/util/metrics.ts";

const { values, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  options: { endpoint: { type: "string" }, bucket: { type: "string" }, prefix: { type: "string", default: "" }, dir: { type: "string" } },
  allowPositionals: true,
});
if (!values.endpoint || !values.bucket || !values.dir || !positionals.length) {
  process.stderr.write("usage: pack-floor.ts --endpoint URL --bucket B [--prefix P] --dir D KEY...\n");
  process.exit(2);
}

const metrics = new Metrics();
const client = createS3Client(
  {
    bucket: values.bucket,
    prefix: values.prefix!,
    endpoint: values.endpoint,
    region: process.env.AWS_REGION ?? "us-east-1",
    pathStyle: true,
    minUploadSize: 0,
    uploadConcurrency: 1,
    concurrency: 8,
    readOnly: true,
    flushTimeoutMs: 0,
    compress: true,
    timeoutMs: 30_000,
  },
  { metrics, logger: createLogger({}) },
);
const disk = createDiskStore({ dir: values.dir });

const t0 = performance.now();
const cpu0 = process.cpuUsage();
const packs = new Map<string, PackRef>();
const leadAnswer = client.get(leadObject(positionals[0]!)).catch(() => null);
const heads = await Promise.all(positionals.map((key) => client.getBytes(headObject(key), MAX_HEAD_BYTES)));
positionals.forEach((key, i) => {
  const body = heads[i];
  if (!body) throw new Error(`pack-floor: no head for ${key}`);
  metrics.inc("bytes", body.length);
  for (const p of decodeHead(body, key).packs) packs.set(p.name, p);
});
let lead: S3Object | null = await leadAnswer;
let entries = 0;
let bad = 0;
const sink = { isLocal: () => false, landed: () => void entries++, failed: () => void bad++ };
const done: Promise<void>[] = [];
const window = new FrameWindow();
const jobs: LineJob[] = [...packs.values()].flatMap((p) => readerSegments(p)).map((seg: Segment) => {
  let obj: S3Object | null = null;
  let finished!: () => void;
  done.push(new Promise<void>((r) => (finished = r)));
  return {
    open: async () => {
      if (lead && seg.start === 0 && leadCovers(lead.metadata, seg.pack.name, seg.end)) {
        [obj, lead] = [{ ...lead, status: 200 }, null];
        return;
      }
      obj = await client.get(packObject(seg.pack.name), seg.whole ? {} : { range: [seg.start, seg.end - 1] });
    },
    land: async () => {
      if (!obj) throw new Error(`pack-floor: pack ${seg.pack.name} is missing`);
      await landSegment(disk, seg, { body: obj.body, firstByte: obj.status === 206 ? seg.start : 0 }, sink, (n) => metrics.inc("bytes", n), { window });
      finished();
    },
    drop: () => finished(),
  };
});
new SegmentLine().push(jobs);
await Promise.all(done);
await window.drain();
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
(lead as S3Object | null)?.cancel();
client.close();
console.log(JSON.stringify({ ms: Math.round(ms), cpuMs: Math.round((cpu.user + cpu.system) / 1000), requests: metrics.get("s3_requests"), bytes: metrics.get("bytes"), entries, bad }));
