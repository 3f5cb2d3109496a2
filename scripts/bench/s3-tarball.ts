// The tarball baseline of scripts/bench/s3.ts: what teams do on CI today
// (actions/cache, setup-go): the whole GOCACHE of a machine saved as one
// `tar --zstd` object, restored at the start of a job, then plain go.
//
// Saved as actions/cache saves it (tar --posix, zstd with --long=30, all
// cores), stored in the same bucket. Restored through the same proxy as
// every other variant: one GET streamed straight into `tar -x` (download
// and extraction overlap; actions/cache downloads to a file first, so this
// is the faster way to restore it), then the target's commands with the
// plain go command on the restored cache.

import { join } from "node:path";
import type { S3Client } from "../../src/s3/client.ts";

/** tar --zstd of dir into file, as actions/cache writes it. Returns its size. */
export function saveTarball(dir: string, file: string): number {
  const p = Bun.spawnSync(["tar", "--posix", "-I", "zstd -T0 --long=30", "-cf", file, "-C", dir, "."], { stderr: "inherit" });
  if (p.exitCode !== 0) throw new Error(`tar -c of ${dir} failed`);
  return Bun.file(file).size;
}

/** One GET of the tarball through client, extracted into dir as it arrives. Resolves when tar is done. */
/** Downloads and extracts; returns the CPU ms of tar and its zstd. */
export async function restoreTarball(client: S3Client, name: string, dir: string): Promise<number> {
  const obj = await client.get(name);
  if (!obj) throw new Error(`tarball ${name} is missing`);
  Bun.spawnSync(["mkdir", "-p", dir]);
  const tar = Bun.spawn(["tar", "-I", "zstd -d --long=30", "-xf", "-", "-C", dir], { stdin: "pipe", stdout: "ignore", stderr: "inherit" });
  for await (const chunk of obj.body) {
    tar.stdin.write(chunk);
    await tar.stdin.flush();
  }
  await tar.stdin.end();
  if ((await tar.exited) !== 0) throw new Error(`tar -x into ${dir} failed`);
  return Number(tar.resourceUsage()?.cpuTime.total ?? NaN) / 1000;
}

export function tarballName(target: string): string {
  return join("tarballs", `${target.replace(/\W+/g, "-")}.tar.zst`);
}
