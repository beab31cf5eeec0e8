/**
 * A loopback port nothing listens on now, for a process that must come back at the same
 * address after a restart (port 0 would give it another). Another process could take the
 * port between this check and its use, which loopback tests on one machine can ignore.
 */
import { type AddressInfo, createServer } from "node:net";

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
