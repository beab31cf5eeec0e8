/** host:port listen addresses, as every Coherent process takes them in flags and config. */

/** Split host and port of a checked listen address; an empty host listens on every address. */
export function parseListen(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return { host: host === "" ? "0.0.0.0" : host, port: Number(address.slice(colon + 1)) };
}

/** How a bound address is shown (and dialled): an IPv6 host in brackets, any-address as loopback. */
export function boundAddress(host: string, port: number): string {
  const shown = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return shown.includes(":") ? `[${shown}]:${port}` : `${shown}:${port}`;
}
