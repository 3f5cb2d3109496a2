// GET|HEAD <module>/@v/<version>.zip: kept forever, streamed while it
// downloads. A request is in one of four states, decided in one synchronous
// step once the store has been asked, so that two requests can never both
// start a fetch:
//
//   stored     the zip is in the store: served from disk (Range, ETag, HEAD)
//   notfound   the upstream said 404/410 less than --modproxy-not-found-ttl ago
//   inflight   a Flight (storage/stream-flight.ts) is fetching it: joined
//   fetch      none of these: a Flight is started, and joined
//
// A joined flight is answered by its own state once it is connected:
// streaming (the client reads the download as it lands), stored (served
// from disk), missing (404/410, remembered) or failed (an error). HEAD
// waits for the end of the flight: it must not announce a zip that is then
// refused. A streamed answer has no Content-Length: its body ends cleanly
// only once the zip has been validated, and errors otherwise, so a client
// can never take a refused zip for a complete one.

import type { Logger } from "../../util/log.ts";
import type { Metrics } from "../../util/metrics.ts";
import { modFileRel, type ModuleRequest } from "../module/layout.ts";
import { MAX_ZIP, validateZip } from "../module/validate.ts";
import { ValidationError } from "../module/validation-error.ts";
import type { SmallCache } from "../storage/small-cache.ts";
import type { ModStore, StoredFile } from "../storage/store.ts";
import { type Flight, type FlightSource, StreamFlights } from "../storage/stream-flight.ts";
import type { FetchResult } from "../upstream/fetch.ts";
import type { Answer } from "./answer.ts";
import { IMMUTABLE } from "./respond.ts";

export type ZipRequest = ModuleRequest & { kind: "file"; file: "zip" };

type ZipState =
  | { kind: "stored"; file: StoredFile }
  | { kind: "notfound"; status: 404 | 410; message: string }
  | { kind: "inflight"; flight: Flight }
  | { kind: "fetch" };

export interface ZipServerOptions {
  store: ModStore;
  /** Remembers "not found" answers, for zips too. */
  small: SmallCache;
  /** Where a missing file comes from (the bucket, an upstream, the go command). */
  upstream: (rel: string, r: ModuleRequest) => Promise<FetchResult>;
  answer: Answer;
  /** Counts the bytes of a streamed answer as they are sent (answer.ts). */
  countSent: (bytes: number) => void;
  metrics: Metrics;
  logger: Logger;
  onStored?: (rel: string, path: string) => void;
}

export class ZipServer {
  private readonly flights = new StreamFlights();

  constructor(private readonly o: ZipServerOptions) {}

  async serve(req: Request, r: ZipRequest): Promise<Response> {
    const rel = modFileRel(r.escModule, r.escVersion, "zip");
    const state = this.stateOf(rel, await this.o.store.stat(rel));
    switch (state.kind) {
      case "stored":
        return this.serveStored(req, rel, state.file);
      case "notfound":
        return this.o.answer(req, state, rel, "");
      case "inflight":
        return this.serveFlight(req, rel, state.flight);
      case "fetch":
        return this.serveFlight(req, rel, this.startFetch(rel, r));
    }
  }

  /** The state of rel's request, given what the store said; synchronous, so that it and a start are one step. */
  private stateOf(rel: string, file: StoredFile | null): ZipState {
    if (file) return { kind: "stored", file };
    const nf = this.o.small.negative(rel);
    if (nf) return { kind: "notfound", ...nf };
    const flight = this.flights.get(rel);
    return flight ? { kind: "inflight", flight } : { kind: "fetch" };
  }

  private async source(rel: string, r: ModuleRequest): Promise<FlightSource> {
    // A flight that ended between the request's look at the store and this one's start stored it.
    if (await this.o.store.stat(rel)) return { kind: "stored" };
    const res = await this.o.upstream(rel, r);
    if (!res.ok) return { kind: "missing", status: res.status, message: res.message };
    if (res.size !== null && res.size > MAX_ZIP) {
      res.body.cancel().catch(() => {});
      throw new Error(`zip is ${res.size} bytes, more than the ${MAX_ZIP} the go command accepts`);
    }
    return { kind: "body", body: res.body, size: res.size };
  }

  private startFetch(rel: string, r: ZipRequest): Flight {
    const { store } = this.o;
    const flight = this.flights.start(rel, () => store.tempFor(rel));
    const t0 = performance.now();
    void flight
      .run(() => this.source(rel, r), {
        limit: MAX_ZIP,
        validate: (tmp) => validateZip(tmp, r.module, r.version),
        commit: (tmp) => store.commit(tmp, rel),
        discard: (tmp) => store.discard(tmp),
      })
      .then(() => this.settled(rel, flight, t0));
    return flight;
  }

  /** Counts, logs and remembers how a flight ended. */
  private settled(rel: string, flight: Flight, t0: number): void {
    const { metrics } = this.o;
    if (flight.downloaded) metrics.observe("modproxy_zip_download_seconds", (performance.now() - t0) / 1000);
    switch (flight.state) {
      case "stored":
        if (!flight.downloaded) return;
        metrics.inc("modproxy_bytes_fetched", flight.written);
        this.o.onStored?.(rel, this.o.store.path(rel));
        return;
      case "missing":
        this.o.small.rememberNotFound(rel, flight.missing!.status, flight.missing!.message);
        return;
      case "failed":
        metrics.inc(flight.error instanceof ValidationError ? "modproxy_refused" : "modproxy_upstream_errors");
        if (flight.downloaded) this.o.logger.warn(`modproxy: ${rel}: not stored: ${flight.error?.message}`);
        return;
    }
  }

  private async serveStored(req: Request, rel: string, file: StoredFile | null): Promise<Response> {
    const f = file ?? (await this.o.store.stat(rel));
    if (!f) return this.o.answer(req, { kind: "error", status: 502, message: `${rel}: stored, then gone from the store` }, rel, "");
    return this.o.answer(req, { kind: "file", ...f, stale: false, hit: true }, rel, IMMUTABLE);
  }

  /** Answers from a flight: its stream while it runs, else by how it ended. */
  private async serveFlight(req: Request, rel: string, flight: Flight): Promise<Response> {
    await (req.method === "HEAD" ? flight.finished : flight.connected);
    const body = req.method === "HEAD" ? null : flight.attach(this.o.countSent);
    if (body) {
      this.o.metrics.inc("modproxy_misses");
      return new Response(body, { status: 200, headers: { "Content-Type": "application/zip", "Cache-Control": IMMUTABLE } });
    }
    switch (flight.state) {
      case "missing":
        return this.o.answer(req, { kind: "notfound", ...flight.missing! }, rel, "");
      case "failed": {
        const status = (flight.error as { status?: number } | null)?.status ?? 502;
        return this.o.answer(req, { kind: "error", status, message: flight.error?.message ?? "download failed" }, rel, "");
      }
      default:
        // Stored (it finished before this client could join).
        return this.serveStored(req, rel, null);
    }
  }
}
