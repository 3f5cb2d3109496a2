// Placeholder until the daemon lands (issue 4).
import { defineCommand } from "citty";

export default defineCommand({
  meta: { name: "connect", description: "(not built yet)" },
  run() {
    throw new Error("config: 'connect' is not built yet");
  },
});
