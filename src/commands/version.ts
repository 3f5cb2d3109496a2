import { defineCommand } from "citty";
import { VERSION } from "../version.ts";

export default defineCommand({
  meta: { name: "version", description: "Print the gostash version" },
  run() {
    process.stdout.write(`gostash ${VERSION} (bun ${Bun.version}, ${process.platform}/${process.arch})\n`);
  },
});
