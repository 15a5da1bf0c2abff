/**
 * Calls `work` for each item with at most `limit` calls in flight. After the first failure no new item starts;
 * the calls already running are waited for, then the first failure is thrown (so no work is left running
 * behind the caller's back). Items start in order; `work` gets the item's index too.
 */
export async function forEachBounded<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        await work(items[index] as T, index);
      } catch (error) {
        if (!failed) {
          failed = true;
          failure = error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, Math.floor(limit)), items.length) }, worker));
  if (failed) throw failure;
}
