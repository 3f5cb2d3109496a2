// What to check when the bucket refuses or fails: one hint per kind of
// trouble, appended to the first failure a run logs (client.ts).

import type { S3Config } from "../config/config.ts";
import type { RemoteError } from "./errors.ts";
import { hideUrlPasswords } from "../util/redact.ts";

const BY_CODE: Record<string, (c: S3Config) => string> = {
  InvalidBucketName: (c) =>
    `bucket names are 3-63 characters of lowercase letters, digits, dots and hyphens; got ${JSON.stringify(c.bucket)} (--bucket / GOCACHE_S3_BUCKET)`,
  NoSuchBucket: (c) => `bucket ${JSON.stringify(c.bucket)} does not exist at ${c.endpoint ?? "AWS"} (check --bucket, --region, --s3-endpoint-url)`,
  PermanentRedirect: () => "the bucket is in another region (set --region / GOCACHE_S3_REGION)",
  AuthorizationHeaderMalformed: () => "the bucket is in another region (set --region / GOCACHE_S3_REGION)",
  InvalidAccessKeyId: () => "the access key is unknown (check AWS_ACCESS_KEY_ID, AWS_PROFILE or the instance role)",
  SignatureDoesNotMatch: () => "the secret key does not match (check AWS_SECRET_ACCESS_KEY or the profile)",
  ExpiredToken: () => "the session token has expired (refresh the credentials)",
  AccessDenied: () => "the credentials may not do this (check the bucket policy; reads of missing keys need s3:ListBucket to be misses)",
};

/** " (hint: ...)" for a failure, or "" when there is nothing useful to add. */
export function failureHint(err: RemoteError, cfg: S3Config): string {
  const byCode = err.code ? BY_CODE[err.code] : undefined;
  if (byCode) return ` (hint: ${byCode(cfg)})`;
  switch (err.kind) {
    case "auth":
      return " (hint: check the credentials and the bucket policy)";
    case "timeout":
      return ` (hint: ${cfg.endpoint ? hideUrlPasswords(cfg.endpoint) : "S3"} did not answer within --s3-timeout ${cfg.timeoutMs}ms)`;
    case "network":
      return ` (hint: check --s3-endpoint-url${cfg.endpoint ? ` ${hideUrlPasswords(cfg.endpoint)}` : ""} and the network)`;
    default:
      return err.status !== undefined && err.status >= 500 ? " (hint: the S3 service is failing; builds go on from the local cache)" : "";
  }
}
