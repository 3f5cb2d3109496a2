// GOSTASH_VERSION is replaced at build time by scripts/build.ts (`define`).
declare const GOSTASH_VERSION: string | undefined;

export const VERSION: string = typeof GOSTASH_VERSION === "string" ? GOSTASH_VERSION : "dev";
