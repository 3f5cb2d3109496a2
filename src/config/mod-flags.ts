import type { FlagSpecs } from "./flags.ts";

// `gostash mod import|export` (src/commands/mod.ts).
export const modFlags = {
  "go-sum": {
    type: "string",
    env: ["GOSTASH_GO_SUM"],
    valueHint: "file",
    description: "mod import: check every .zip and .mod against these go.sum lines (comma-separated files); mismatches are rejected",
  },
  "allow-unverified": {
    type: "boolean",
    env: ["GOSTASH_ALLOW_UNVERIFIED"],
    description:
      "mod import: import a .zip/.mod with no go.sum line that the checksum database does not know or cannot be reached for (default: reject it)",
  },
  "sumdb-key": {
    type: "string",
    env: ["GOSTASH_SUMDB_KEY", "GOSUMDB"],
    valueHint: "keys",
    description: "mod import: verifier keys of the checksum databases (NAME+HASH+KEY, comma-separated, as in GOSUMDB); sum.golang.org's is built in",
  },
  "sumdb-concurrency": {
    type: "count",
    env: ["GOSTASH_SUMDB_CONCURRENCY"],
    valueHint: "n",
    default: "16",
    description: "mod import: checksum-database lookups in flight at once",
  },
  out: {
    type: "string",
    env: ["GOSTASH_MOD_OUT"],
    valueHint: "dir|file.tar.gz",
    description: "mod export: where to write the GOPROXY=file:// tree (a directory, or a .tar.gz)",
  },
  "go-mod": {
    type: "string",
    env: ["GOSTASH_GO_MOD"],
    valueHint: "file",
    defaultText: "the go.mod of the current module",
    description: "mod export: export the whole module graph of this go.mod (as `go mod download` needs it)",
  },
  goproxy: {
    type: "string",
    env: ["GOPROXY"],
    valueHint: "list",
    description: "mod export: where the go command downloads from",
  },
  gosumdb: {
    type: "string",
    env: ["GOSUMDB"],
    valueHint: "db",
    description: "mod export: the checksum database the go command verifies against",
  },
} satisfies FlagSpecs;
