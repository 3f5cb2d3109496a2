import { defineCommand } from "citty";
import { VERSION } from "../version.ts";

/** What `gostash version` and `gostash --version` print. */
export function versionLine(): string {
  return `gostash ${VERSION} (bun ${Bun.version}, ${process.platform}/${process.arch})`;
}

export default defineCommand({
  meta: { name: "version", description: "Print the gostash version" },
  run() {
    process.stdout.write(`${versionLine()}\n`);
  },
});
