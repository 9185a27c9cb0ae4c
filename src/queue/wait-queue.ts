import Denque from 'denque';

/**
 * What waits in a {@link WaitQueue}: higher `priority` first (0 when absent), lower `seq` first
 * among equals (arrival order when absent).
 */
export interface Waiting {
  /** Higher goes first; 0 when absent. */
  readonly priority?: number | undefined;
  /** Submission order among equal priorities; arrival order when absent. */
  readonly seq?: number | undefined;
}

/**
 * A binary max-heap on (priority, then earlier `seq`). The keys sit in arrays of their own,
 * beside the entries: a comparison reads two packed numbers rather than two fields of objects
 * scattered through the heap (a profile of 100 000 queued tasks showed those loads as the cost).
 */
class Heap<T extends Waiting> {
  readonly items: T[] = [];
  readonly #priority: number[] = [];
  readonly #seq: number[] = [];

  push(entry: T): void {
    this.items.push(entry);
    this.#priority.push(entry.priority ?? 0);
    this.#seq.push(entry.seq ?? 0);
    this.#up(this.items.length - 1);
  }

  shift(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    const priority = this.#priority.pop() as number;
    const seq = this.#seq.pop() as number;
    if (top !== undefined && last !== undefined && items.length > 0)
      this.#down(last, priority, seq);
    return top;
  }

  #up(at: number): void {
    const items = this.items;
    const priorities = this.#priority;
    const seqs = this.#seq;
    const entry = items[at] as T;
    const priority = priorities[at] as number;
    const seq = seqs[at] as number;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const p = priorities[parent] as number;
      if (p > priority || (p === priority && (seqs[parent] as number) < seq)) break;
      items[at] = items[parent] as T;
      priorities[at] = p;
      seqs[at] = seqs[parent] as number;
      at = parent;
    }
    items[at] = entry;
    priorities[at] = priority;
    seqs[at] = seq;
  }

  /** Sifts `entry` (with its keys) down from the root. */
  #down(entry: T, priority: number, seq: number): void {
    const items = this.items;
    const priorities = this.#priority;
    const seqs = this.#seq;
    const length = items.length;
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= length) break;
      let cp = priorities[child] as number;
      const right = child + 1;
      if (right < length) {
        const rp = priorities[right] as number;
        if (rp > cp || (rp === cp && (seqs[right] as number) < (seqs[child] as number))) {
          child = right;
          cp = rp;
        }
      }
      if (priority > cp || (priority === cp && seq < (seqs[child] as number))) break;
      items[at] = items[child] as T;
      priorities[at] = cp;
      seqs[at] = seqs[child] as number;
      at = child;
    }
    items[at] = entry;
    priorities[at] = priority;
    seqs[at] = seq;
  }
}

// A constant rather than `-Infinity` at each reset: the unary minus, first run when a queue
// empties, had no type feedback yet and sent the optimized gate back to the interpreter.
const BEFORE_ANY = -Infinity;

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
  #heap: Heap<T> | undefined;
  #lastSeq = BEFORE_ANY;

  get length(): number {
    return this.#heap === undefined ? this.#fifo.length : this.#heap.items.length;
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
  }

  /** The first entry, without taking it. */
  peek(): T | undefined {
    const heap = this.#heap;
    return heap === undefined ? this.#fifo.peekFront() : heap.items[0];
  }

  /** Takes the first entry. */
  shift(): T | undefined {
    const heap = this.#heap;
    if (heap === undefined) {
      const entry = this.#fifo.shift();
      if (entry === undefined) this.#lastSeq = BEFORE_ANY;
      return entry;
    }
    const top = heap.shift();
    if (heap.items.length === 0) {
      // Empty again: back to the ring buffer.
      this.#heap = undefined;
      this.#lastSeq = BEFORE_ANY;
    }
    return top;
  }

  #toHeap(): Heap<T> {
    const heap = new Heap<T>();
    // The ring buffer is in order already, so each push stays where it lands.
    for (let entry = this.#fifo.shift(); entry !== undefined; entry = this.#fifo.shift())
      heap.push(entry);
    this.#heap = heap;
    return heap;
  }
}
