import type { BoxSettings, WorkspaceFull } from '../../shared/protocol';
import type { Box } from './box';
import { runBoxHelper } from './boxExec';
import { WORKSPACE_DIR } from './boxConfig';

/** Free space at or below this share of the volume (and at least 1 MiB) counts as full. */
const FULL_FRACTION = 0.01;
const FULL_MIN_KIB = 1024;

/**
 * `/workspace`'s size, use and free space in KiB as `df -kP` reports them in the box (busybox and coreutils
 * alike), or undefined when the image has no `df` or it printed something else.
 */
export async function readWorkspaceUsage(
  box: Box,
  signal?: AbortSignal,
): Promise<{ sizeKiB: number; usedKiB: number; availableKiB: number } | undefined> {
  const result = await runBoxHelper(box.engine, box.containerId, 'df -kP "$1"', [WORKSPACE_DIR], { signal, timeoutMs: 10_000 });
  if (result.exitCode !== 0) return undefined;
  // Filesystem 1024-blocks Used Available Capacity Mounted-on; the numbers are the last fields but two.
  const fields = result.stdout.trim().split('\n').pop()?.trim().split(/\s+/) ?? [];
  const [sizeKiB, usedKiB, availableKiB] = fields.slice(-5, -2).map(Number);
  if (fields.length < 6 || ![sizeKiB, usedKiB, availableKiB].every((n) => Number.isInteger(n) && n >= 0)) return undefined;
  return { sizeKiB, usedKiB, availableKiB };
}

/**
 * Called after a run failed: whether it left `/workspace` (nearly) full, the likely reason it failed
 * (`ENOSPC`). Costs one small exec, so only failed runs pay it; any error reading the usage means "don't know".
 */
export async function workspaceFullAfterFailure(
  box: Box,
  volume: BoxSettings['workspaceVolume'],
  signal?: AbortSignal,
): Promise<WorkspaceFull | undefined> {
  const usage = await readWorkspaceUsage(box, signal).catch(() => undefined);
  if (!usage || usage.sizeKiB === 0) return undefined;
  const full = usage.availableKiB <= Math.max(FULL_MIN_KIB, usage.sizeKiB * FULL_FRACTION);
  return full ? { ...usage, volume } : undefined;
}
