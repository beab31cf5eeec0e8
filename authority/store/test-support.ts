/** Helpers the store's contract suites share: waiting for NOTIFY events and other effects, and store errors. */
import { expect } from "vitest";
import { StoreError } from "./errors.js";

/** Resolves with every event heard once `count` have arrived; `events` holds them as they come. */
export function collect<T>(count: number) {
  const events: T[] = [];
  let done: (events: T[]) => void = () => {};
  const all = new Promise<T[]>((resolve) => {
    done = resolve;
  });
  const fn = (event: T) => {
    events.push(event);
    if (events.length >= count) done(events);
  };
  return { events, all, fn };
}

export function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms)),
  ]);
}

/** The StoreError `promise` rejects with; fails the test if it resolves or rejects otherwise. */
export async function storeError(promise: Promise<unknown>): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

/** Resolves once `check` resolves true; fails after `ms`. For effects that land asynchronously. */
export async function eventually(check: () => Promise<boolean>, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
