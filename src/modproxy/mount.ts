// Mounts the module proxy at /mod on the daemon's HTTP router
// (`gostash serve --http=ADDR --modproxy`).

import type { S3Config } from "../config/config.ts";
import type { Router } from "../http/router.ts";
import type { Logger } from "../util/log.ts";
import type { Metrics } from "../util/metrics.ts";
import type { ModProxyConfig } from "./config.ts";
import { createModProxy, type ModProxy } from "./handler.ts";

export interface MountOptions extends ModProxyConfig {
  metrics: Metrics;
  logger: Logger;
  /** The daemon's bucket, if any (mirroring of module files: not done yet). */
  s3?: S3Config | null;
}

export function mountModProxy(router: Router, o: MountOptions): ModProxy {
  const proxy = createModProxy({ ...o, prefix: "/mod" });
  router.mount("/mod", proxy.fetch);
  o.logger.info(
    `modproxy: serving /mod from ${proxy.store.dir}; upstream ${o.upstreams.map((u) => u.url + (u.next ?? "")).join("")}` +
      (o.sumdbs.length ? `; sumdb ${o.sumdbs.map((d) => d.name).join(",")}` : ""),
  );
  return proxy;
}
