// `gostash revproxy ca [--cache-dir DIR] [--install]`: prints the reverse
// proxy's CA certificate (PEM) on stdout, for clients to trust
// (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, git's http.sslCAInfo, a container's
// trust store), making the CA first if the cache directory has none yet,
// so trust can be set up before the daemon ever starts. --install also adds
// it to the system trust store (src/revproxy/trust.ts). The CA is the one
// `gostash serve --revproxy` uses with the same --cache-dir
// (src/revproxy/ca.ts).

import { defineCommand } from "citty";
import { localConfig } from "../config/config.ts";
import { readFlags, toCittyArgs } from "../config/flags.ts";
import { localFlags, logFlags, revproxyCAFlags } from "../config/options.ts";
import { revproxyDir } from "../config/revproxy.ts";
import { loadOrCreateCA } from "../revproxy/ca.ts";
import { installCA } from "../revproxy/trust.ts";
import { createLogger } from "../util/log.ts";
import { writeStderr } from "../util/std-output.ts";
import { noSubcommand } from "../cli/subcommand.ts";

const caSpecs = { ...logFlags, "cache-dir": localFlags["cache-dir"], ...revproxyCAFlags };

/** citty drops a nested subcommand's result: ca leaves its exit status here and `revproxy` returns it. */
let status: number | undefined;

const caCommand = defineCommand({
  meta: { name: "ca", description: "Print the reverse proxy's CA certificate (PEM) for clients to trust; --install adds it to the system trust store" },
  args: toCittyArgs(caSpecs),
  run({ rawArgs }) {
    const flags = readFlags(rawArgs, caSpecs);
    const logger = createLogger({ verbose: flags.bool("verbose"), debug: flags.mask("debug") });
    const dir = revproxyDir(localConfig(flags).cacheDir);
    try {
      const ca = loadOrCreateCA(dir, new Date(), (m) => logger.warn(m));
      if (ca.created) writeStderr(`gostash revproxy: made a new CA in ${dir}\n`);
      if (flags.bool("install")) {
        const r = installCA(ca.pem, ca.certPath);
        writeStderr(`gostash revproxy: CA ${r.changed ? "installed in" : "already in"} ${r.where}\n`);
      }
      process.stdout.write(ca.pem);
      status = 0;
    } catch (err) {
      // CAError, TrustError: their messages say what and where; no stack.
      writeStderr(`gostash: ${(err as Error).message}\n`);
      status = 1;
    }
    return status;
  },
});

export default defineCommand({
  meta: { name: "revproxy", description: "The caching reverse proxy of `serve --revproxy`: its CA certificate" },
  subCommands: { ca: caCommand },
  run() {
    // Set by the subcommand that ran; none ran when the user named none.
    return status ?? noSubcommand("revproxy", ["ca"]);
  },
});
