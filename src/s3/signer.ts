// SigV4 signing with the AWS SDK's credential chain (environment, shared
// config and SSO profiles, web identity/OIDC, ECS/IMDS) and its signer,
// loaded on the first request that needs them: a run served from the local
// disk alone never pays for them, and importing all of @aws-sdk/client-s3
// cost ~100 ms before the first remote answer, so only these two packages
// are loaded. Hashing goes through node:crypto.

import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";

export interface SignableRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
}

export interface Signer {
  sign(req: SignableRequest): Promise<{ headers: Record<string, string> }>;
}

/** SHA-256 / HMAC-SHA-256 in the shape the SigV4 signer wants. */
class Sha256 {
  private h: Hash | Hmac;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = this.make();
  }
  private make(): Hash | Hmac {
    if (this.secret === undefined) return createHash("sha256");
    return createHmac("sha256", typeof this.secret === "string" ? this.secret : bytes(this.secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    if (typeof data === "string") this.h.update(data, "utf8");
    else this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.make();
  }
}

function bytes(d: ArrayBuffer | ArrayBufferView): Buffer {
  return ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);
}

/** A signer for `region`, credentials from the SDK's default chain. */
export async function loadSigner(region: string): Promise<Signer> {
  const [cred, sv4] = await Promise.all([import("@aws-sdk/credential-provider-node"), import("@smithy/signature-v4")]);
  return new sv4.SignatureV4({
    credentials: cred.defaultProvider(),
    region,
    service: "s3",
    sha256: Sha256,
    uriEscapePath: false, // the path is encoded once, by the client
    applyChecksum: false,
  }) as unknown as Signer;
}
