// Mounts the module proxy at /mod on the daemon's HTTP router
// (`gostash serve --http=ADDR --modproxy`).

import type { Router } from "../../http/router.ts";
import type { S3Client } from "../../s3/client.ts";
import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import type { ModProxyConfig } from "../config.ts";
import { createS3Mirror } from "../storage/mirror.ts";
import { createModProxy, type ModProxy } from "./proxy.ts";

export interface MountOptions extends ModProxyConfig {
  metrics: Metrics;
  logger: Logger;
  /** The daemon's bucket, if any: immutable module files are mirrored to [prefix/]mod/ (storage/mirror.ts). */
  bucket?: { client: S3Client; readOnly: boolean } | null;
  onModuleRequest?: (module: string) => void;
}

export function mountModProxy(router: Router, o: MountOptions): ModProxy {
  const mirror = o.bucket ? createS3Mirror({ ...o.bucket, logger: o.logger, metrics: o.metrics }) : undefined;
  const proxy = createModProxy({ ...o, prefix: "/mod", mirror });
  router.mount("/mod", proxy.fetch);
  o.logger.info(
    `modproxy: serving /mod from ${proxy.store.dir}; upstream ${o.upstreams.map((u) => u.url + (u.next ?? "")).join("")}` +
      (o.sumdbs.length ? `; sumdb ${o.sumdbs.map((d) => d.name).join(",")}` : "") +
      (o.bucket ? `; mirrored to s3://${o.bucket.client.bucket}/${o.bucket.client.key("mod/")}` : "") +
      (o.private ? `; private ${o.private.patterns} with the go command (module cache ${o.private.modcache})` : ""),
  );
  if (o.private && !o.offline && !Bun.which("go")) {
    o.logger.warn(`modproxy: --private is set but there is no go command on PATH: private modules will be answered 410 until there is one`);
  }
  return proxy;
}
