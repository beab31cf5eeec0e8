/**
 * A TCP proxy on loopback that can black-hole the path it stands on, as a network partition
 * does: `cut()` stops forwarding in both directions while every socket stays open (no FIN, no
 * RST), so the ends learn of the cut only from their own timeouts; connections made during the
 * cut are accepted and held the same way. `resume()` forwards again, from where it stopped:
 * sockets are paused, not drained, so nothing is lost, and the kernel's buffers fill and close
 * the TCP window as a silent path would. `reset()` drops every connection with an RST, what
 * was held on the path included: the ends see their connections die.
 */
import { type AddressInfo, connect, createServer, type Socket } from "node:net";

export interface TcpBlackhole {
  /** host:port to dial instead of the target. */
  readonly address: string;
  /** Connections accepted so far. */
  readonly connections: number;
  cut(): void;
  resume(): void;
  /** Resets every connection open now; new ones are forwarded (or held, while cut) as before. */
  reset(): void;
  /** Destroys every connection and stops listening; idempotent. */
  close(): Promise<void>;
}

export async function startTcpBlackhole(target: string): Promise<TcpBlackhole> {
  const separator = target.lastIndexOf(":");
  const host = target.slice(0, separator);
  const port = Number(target.slice(separator + 1));
  const sockets = new Set<Socket>();
  let cut = false;
  let accepted = 0;
  let closing: Promise<void> | undefined;

  /** Writes what `from` reads into `to`, pausing `from` while `to` is full or the path is cut. */
  const forward = (from: Socket, to: Socket): void => {
    from.on("data", (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on("drain", () => {
      if (!cut) from.resume();
    });
    from.on("end", () => to.end());
  };
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => sockets.delete(socket));
    if (cut) socket.pause();
  };

  const server = createServer((client) => {
    accepted++;
    track(client);
    const upstream = connect({ host, port });
    track(upstream);
    forward(client, upstream);
    forward(upstream, client);
    // One side gone, the other goes too, as it would through a real middlebox's teardown.
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const bound = server.address() as AddressInfo;

  return {
    address: `127.0.0.1:${bound.port}`,
    get connections() {
      return accepted;
    },
    cut() {
      cut = true;
      for (const socket of sockets) socket.pause();
    },
    resume() {
      cut = false;
      for (const socket of sockets) socket.resume();
    },
    reset() {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
