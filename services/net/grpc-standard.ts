/**
 * The standard gRPC services every Coherent gRPC server offers beside its own:
 * grpc.health.v1.Health (so load balancers, Kubernetes probes and grpc-health-probe see
 * readiness) and server reflection (so grpcurl and grpcui work without the .proto files).
 * Readiness is one switch: the overall status "" and each named service move together.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Server } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";

export interface StandardServices {
  /** SERVING when true, NOT_SERVING when false, for "" and every service named at creation. */
  setServing(serving: boolean): void;
}

/**
 * Adds Health (NOT_SERVING until setServing(true)) and reflection over `protoFiles` (paths
 * under proto/, e.g. "coherent/v1/authority.proto") to `server`. `services` are the full
 * names health answers for, e.g. "coherent.v1.AuthorityFeed". Reads the .proto files
 * synchronously: call it once at construction, not per request.
 */
export function addStandardServices(
  server: Server,
  services: readonly string[],
  protoFiles: readonly string[],
): StandardServices {
  const names = ["", ...services];
  const health = new HealthImplementation(Object.fromEntries(names.map((name) => [name, "NOT_SERVING"])));
  health.addToServer(server);
  const definition = loadSync([...protoFiles, healthProtoPath], {
    includeDirs: [protoRoot()],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  new ReflectionService(definition).addToServer(server);
  return {
    setServing(serving) {
      for (const name of names) health.setStatus(name, serving ? "SERVING" : "NOT_SERVING");
    },
  };
}

/**
 * The repository's proto/ folder: two levels up from services/net/ when run from source,
 * three from dist/services/net/ — tsc does not copy .proto files, the package ships them at
 * its root.
 */
function protoRoot(): string {
  const candidates = ["../../proto/", "../../../proto/"].map((up) =>
    fileURLToPath(new URL(up, import.meta.url)),
  );
  const found = candidates.find((dir) => existsSync(`${dir}coherent/v1/common.proto`));
  if (found === undefined) throw new Error(`the .proto files are not in ${candidates.join(" or ")}`);
  return found;
}
