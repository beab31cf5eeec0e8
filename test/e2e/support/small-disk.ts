/**
 * A small disk for "the disk is full" faults: a tmpfs of a few hundred KiB mounted on a
 * directory (root only), which `fill()` fills to the last byte with a filler file so the next
 * write anywhere on it fails with ENOSPC, and `unfill()` frees again.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether this process may mount a tmpfs: tried once, on a directory of its own. */
export function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), "coherent-tmpfs-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

export interface SmallDisk {
  readonly dir: string;
  /** Writes the filler until the disk refuses; resolves with the bytes it took. */
  fill(): Promise<number>;
  /** Removes the filler. */
  unfill(): Promise<void>;
  /** Unmounts (lazily, should a process still hold a file open); idempotent. */
  unmount(): void;
}

export async function mountSmallDisk(dir: string, sizeBytes: number): Promise<SmallDisk> {
  await mkdir(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", dir], { stdio: "pipe" });
  const filler = join(dir, "filler");
  let mounted = true;
  return {
    dir,
    async fill() {
      const handle = await open(filler, "a");
      const chunk = Buffer.alloc(4096);
      let written = 0;
      try {
        for (;;) {
          const { bytesWritten } = await handle.write(chunk);
          written += bytesWritten;
          if (bytesWritten < chunk.length) break;
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
      } finally {
        await handle.close();
      }
      return written;
    },
    async unfill() {
      await rm(filler, { force: true });
    },
    unmount() {
      if (!mounted) return;
      mounted = false;
      execFileSync("umount", ["-l", dir], { stdio: "ignore" });
    },
  };
}
