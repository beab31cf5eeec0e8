/** For tests: ask a gRPC server's standard services (health, reflection) as a probe or grpcurl would. */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import {
  type ChannelCredentials,
  credentials,
  loadPackageDefinition,
  makeClientConstructor,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";

type Callback<T> = (error: Error | null, response: T) => void;
interface HealthClient {
  check(request: { service: string }, callback: Callback<{ status: string }>): void;
  close(): void;
}

/** grpc.health.v1.Health/Check: "SERVING", "NOT_SERVING", or the error's message. */
export function checkHealth(
  address: string,
  service = "",
  channel: ChannelCredentials = credentials.createInsecure(),
): Promise<string> {
  const Client = makeClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Client(address, channel) as unknown as HealthClient;
  return new Promise((resolve) =>
    client.check({ service }, (error, response) => {
      client.close();
      resolve(error ? error.message : response.status);
    }),
  );
}

interface ReflectionStream {
  write(request: { list_services: string }): void;
  end(): void;
  on(
    event: "data",
    listener: (response: { list_services_response?: { service: { name: string }[] } }) => void,
  ): void;
  on(event: "error", listener: (error: Error) => void): void;
}

/** The services grpc.reflection.v1 lists, sorted. */
export function listServices(address: string): Promise<string[]> {
  const root = join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection")), "..", "proto");
  const definition = loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [root], keepCase: true });
  // biome-ignore lint/suspicious/noExplicitAny: loadPackageDefinition's result is untyped by nature.
  const loaded = loadPackageDefinition(definition) as any;
  const client = new loaded.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  const stream = client.ServerReflectionInfo() as ReflectionStream;
  return new Promise((resolve, reject) => {
    stream.on("data", (response) => {
      resolve((response.list_services_response?.service ?? []).map((s) => s.name).sort());
      stream.end();
      client.close();
    });
    stream.on("error", reject);
    stream.write({ list_services: "" });
  });
}
