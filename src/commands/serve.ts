// Placeholder until the daemon lands (issue 4).
import { defineCommand } from "citty";

export default defineCommand({
  meta: { name: "serve", description: "(not built yet)" },
  run() {
    throw new Error("config: 'serve' is not built yet");
  },
});
