import Denque from 'denque';

/**
 * What waits in a {@link WaitQueue}: higher `priority` first (0 when absent), lower `seq` first
 * among equals (arrival order when absent).
 */
export interface Waiting {
  readonly priority?: number | undefined;
  readonly seq?: number | undefined;
}

const priorityOf = (entry: Waiting): number => entry.priority ?? 0;

/** Whether `a` goes before `b`. */
const before = (a: Waiting, b: Waiting): boolean => {
  const pa = priorityOf(a);
  const pb = priorityOf(b);
  return pa > pb || (pa === pb && (a.seq ?? 0) < (b.seq ?? 0));
};

/**
 * The order of every wait: highest priority first, submission order (`seq`) among equals.
 *
 * As long as every entry has priority 0 and arrives in `seq` order (the common case: no
 * priorities in use), the queue is a `denque` ring buffer: one array slot per entry and no
 * comparison. The first entry that breaks that order moves the queue onto a binary heap (an
 * array, so still one slot per entry), which it leaves once empty.
 */
export class WaitQueue<T extends Waiting> {
  readonly #fifo = new Denque<T>();
  #heap: T[] | undefined;
  #lastSeq = -Infinity;

  get length(): number {
    return this.#heap === undefined ? this.#fifo.length : this.#heap.length;
  }

  push(entry: T): void {
    let heap = this.#heap;
    if (heap === undefined) {
      const { priority, seq } = entry;
      if (
        (priority === undefined || priority === 0) &&
        !(seq !== undefined && seq < this.#lastSeq)
      ) {
        if (seq !== undefined) this.#lastSeq = seq;
        this.#fifo.push(entry);
        return;
      }
      heap = this.#toHeap();
    }
    heap.push(entry);
    this.#up(heap, heap.length - 1);
  }

  /** The first entry, without taking it. */
  peek(): T | undefined {
    const heap = this.#heap;
    return heap === undefined ? this.#fifo.peekFront() : heap[0];
  }

  /** Takes the first entry. */
  shift(): T | undefined {
    const heap = this.#heap;
    if (heap === undefined) {
      const entry = this.#fifo.shift();
      if (entry === undefined) this.#lastSeq = -Infinity;
      return entry;
    }
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (heap.length > 0) {
      heap[0] = last;
      this.#down(heap, 0);
    } else {
      // Empty again: back to the ring buffer.
      this.#heap = undefined;
      this.#lastSeq = -Infinity;
    }
    return top;
  }

  #toHeap(): T[] {
    // The ring buffer is in order already: as an array it is a valid heap.
    const heap = this.#fifo.toArray();
    this.#fifo.clear();
    this.#heap = heap;
    return heap;
  }

  #up(heap: T[], at: number): void {
    const entry = heap[at] as T;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const above = heap[parent] as T;
      if (!before(entry, above)) break;
      heap[at] = above;
      at = parent;
    }
    heap[at] = entry;
  }

  #down(heap: T[], at: number): void {
    const length = heap.length;
    const entry = heap[at] as T;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= length) break;
      const right = child + 1;
      if (right < length && before(heap[right] as T, heap[child] as T)) child = right;
      const below = heap[child] as T;
      if (!before(below, entry)) break;
      heap[at] = below;
      at = child;
    }
    heap[at] = entry;
  }
}
