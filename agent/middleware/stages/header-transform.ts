/**
 * The `header_transform` stage: its request edits run on the headers sent upstream; its
 * `response` edits are handed to the chain, which the engine applies to the client's response.
 */
import type { Stage } from "../../../services/config/index.js";
import { applyHeaderEdits, compileHeaderEdits, type HeaderOp } from "../header-edits.js";
import type { RequestHook } from "../middleware.js";

export interface CompiledHeaderTransform {
  /** Undefined when the stage edits no request header. */
  readonly request: RequestHook | undefined;
  readonly response: readonly HeaderOp[];
}

export function compileHeaderTransformStage(
  config: Extract<Stage, { type: "header_transform" }>["config"],
): CompiledHeaderTransform {
  const edits = compileHeaderEdits(config);
  return {
    request:
      edits.length === 0
        ? undefined
        : (ctx) => {
            applyHeaderEdits(ctx.upstreamHeaders, edits);
            return undefined;
          },
    response: compileHeaderEdits(config.response),
  };
}
