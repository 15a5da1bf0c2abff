/** One bound on a chunk: the sum of `measure` over its items stays below `max`. */
export interface ChunkBound<T> {
  measure: (item: T) => number;
  max: number;
}

/**
 * Splits `items`, in order, into chunks that keep every bound (e.g. the bytes of paths on a command line and
 * the bytes of the files they name). A chunk always holds at least one item, so an item larger than a bound
 * gets a chunk of its own rather than being dropped or looping.
 */
export function* chunkByBounds<T>(items: readonly T[], bounds: readonly ChunkBound<T>[]): Generator<T[]> {
  let chunk: T[] = [];
  let sums = bounds.map(() => 0);
  for (const item of items) {
    const sizes = bounds.map((b) => b.measure(item));
    if (chunk.length > 0 && bounds.some((b, i) => sums[i] + sizes[i] >= b.max)) {
      yield chunk;
      chunk = [];
      sums = bounds.map(() => 0);
    }
    chunk.push(item);
    sums = sums.map((s, i) => s + sizes[i]);
  }
  if (chunk.length > 0) yield chunk;
}
