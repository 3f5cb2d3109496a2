// The servers and reference plugin scripts/bench/s3.ts needs, installed
// into .tools/bin on first use.
//
// go-cache-plugin is built at a pinned version from the Go module proxy.
// `go install ...@version` is refused by the proxy here (it asks for the
// module's version list to check deprecation, which answers 403), so it is
// built from a throwaway module that requires the pinned version
// (GOSUMDB=off: the checksum database is not reachable here).
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchDir, die, log, root } from "./lib.ts";

const GCP_MODULE = "github.com/tailscale/go-cache-plugin";
const GCP_VERSION = "v0.1.1";

export function ensureVersitygw(): void {
  const p = Bun.spawnSync(["sh", join(root, "scripts/tools/versitygw.sh")], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (p.exitCode !== 0) die("scripts/tools/versitygw.sh failed");
}

/** Builds go-cache-plugin at the pinned version; null (with why) if it cannot. */
export function ensureGoCachePlugin(): { bin: string | null; note: string } {
  const bin = join(root, ".tools/bin/go-cache-plugin");
  const stamp = join(root, ".tools/bin/.go-cache-plugin.version");
  if (existsSync(bin) && existsSync(stamp) && Bun.file(stamp).size > 0) {
    return { bin, note: `${GCP_MODULE} ${GCP_VERSION}` };
  }
  const dir = join(benchDir, "go-cache-plugin-build");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "go.mod"), `module gostash.local/gcpbench\n\ngo 1.24\n\nrequire ${GCP_MODULE} ${GCP_VERSION}\n`);
  log(`building ${GCP_MODULE}@${GCP_VERSION} into .tools/bin (first time: minutes) ...`);
  const p = Bun.spawnSync(["go", "build", "-o", bin, `${GCP_MODULE}/cmd/go-cache-plugin`], {
    cwd: dir,
    env: { ...process.env, GOSUMDB: "off", GOFLAGS: "-mod=mod -buildvcs=false", GOTOOLCHAIN: "local" },
    stdout: "inherit",
    stderr: "inherit",
  });
  if (p.exitCode !== 0) return { bin: null, note: `${GCP_MODULE}@${GCP_VERSION} could not be built (see above)` };
  writeFileSync(stamp, `${GCP_VERSION}\n`);
  return { bin, note: `${GCP_MODULE} ${GCP_VERSION}` };
}
