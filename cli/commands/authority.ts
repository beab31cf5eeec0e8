/**
 * `coherent authority`: run the authority until SIGINT or SIGTERM, then close it (the API
 * stops taking requests, the database is released) and exit 0. Its log lines go to stdout.
 */
import { once } from "node:events";
import type { Command } from "commander";
import { ExitCode } from "../exit-codes.js";
import { coherentAction, type DatabaseFlags, resolveSettings } from "./database.js";

interface AuthorityOptions extends DatabaseFlags {
  readonly listen?: string;
  readonly feedListen?: string;
  readonly feedTlsCert?: string;
  readonly feedTlsKey?: string;
  readonly feedTlsClientCa?: string;
  readonly signingKeyFile?: string;
  readonly logLevel?: string;
  readonly controller?: boolean;
}

export function registerAuthorityCommand(program: Command, exit: (code: ExitCode) => void): void {
  program
    .command("authority")
    .description("run the authority: the operator API over the database, signing bundles")
    .option("--listen <address>", "host:port for the API, port 0 for any free port (default 127.0.0.1:7400)")
    .option(
      "--feed-listen <address>",
      "host:port of the AuthorityFeed gRPC service for distributors (default 127.0.0.1:7401)",
    )
    .option(
      "--feed-tls-cert <file>",
      "serve the feed over TLS with this certificate (PEM; or COHERENT_FEED_TLS_CERT)",
    )
    .option("--feed-tls-key <file>", "the feed certificate's private key (PEM; or COHERENT_FEED_TLS_KEY)")
    .option(
      "--feed-tls-client-ca <file>",
      "require distributors to present a certificate signed by this CA: mTLS (or COHERENT_FEED_TLS_CLIENT_CA)",
    )
    .option("--signing-key-file <file>", "the Ed25519 private key (PKCS#8 PEM) to sign bundles with")
    .option(
      "--controller",
      "also run the rollout controller here (the default on the embedded database; or COHERENT_CONTROLLER=on)",
    )
    .option("--no-controller", "do not run the rollout controller here (run `coherent controller` apart)")
    .option("--log-level <level>", "trace, debug, info, warn, error or silent")
    .action(
      coherentAction(exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<AuthorityOptions>();
        // Loaded here, not at the top: `--help` and the other commands need none of it.
        const { startAuthority } = await import("../../authority/main.js");
        const authority = await startAuthority(await resolveSettings(options));
        const stop = new AbortController();
        await Promise.race([
          once(process, "SIGINT", { signal: stop.signal }),
          once(process, "SIGTERM", { signal: stop.signal }),
        ]);
        stop.abort();
        await authority.close();
        return ExitCode.Ok;
      }),
    );
}
