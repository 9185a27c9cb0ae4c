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

/** A queue in (priority, then earlier `seq`) order: {@link Levels} or {@link Heap}. */
interface Ordered<T extends Waiting> {
  readonly length: number;
  /** `false` when the entry does not fit this structure (it then takes none). */
  push(entry: T): boolean;
  peek(): T | undefined;
  shift(): T | undefined;
}

/** The entries of one priority, in `seq` order. */
class Level<T> {
  readonly priority: number;
  readonly entries = new Denque<T>();
  /** The `seq` of the last entry in. */
  last = -Infinity;

  constructor(priority: number) {
    this.priority = priority;
  }
}

/** At most this many priorities wait at once in {@link Levels}; one more moves them to a heap. */
const MAX_LEVELS = 32;

/**
 * One first-in-first-out list per priority, the lists in priority order. Entries of one priority
 * leave in the order they came, which is the order they were made in: memory is read in the order
 * it was allocated, where a heap reads it at random, and taking one costs no comparison. Holds
 * only entries that arrive in `seq` order within their priority, and up to {@link MAX_LEVELS}
 * priorities: `push()` refuses any other.
 */
class Levels<T extends Waiting> implements Ordered<T> {
  length = 0;
  readonly #byPriority = new Map<number, Level<T>>();
  /** The levels that hold entries, highest priority first. */
  readonly #order: Level<T>[] = [];

  push(entry: T): boolean {
    const priority = entry.priority ?? 0;
    const seq = entry.seq;
    let level = this.#byPriority.get(priority);
    if (level === undefined) {
      const order = this.#order;
      if (order.length >= MAX_LEVELS) return false;
      level = new Level<T>(priority);
      this.#byPriority.set(priority, level);
      let at = 0;
      while (at < order.length && (order[at] as Level<T>).priority > priority) at += 1;
      order.splice(at, 0, level);
    } else if (seq !== undefined && seq < level.last) return false;
    if (seq !== undefined) level.last = seq;
    level.entries.push(entry);
    this.length += 1;
    return true;
  }

  peek(): T | undefined {
    return this.#order[0]?.entries.peekFront();
  }

  shift(): T | undefined {
    const level = this.#order[0];
    if (level === undefined) return undefined;
    const entry = level.entries.shift();
    this.length -= 1;
    if (level.entries.length === 0) {
      this.#order.shift();
      this.#byPriority.delete(level.priority);
    }
    return entry;
  }
}

/**
 * A binary max-heap on (priority, then earlier `seq`). The keys sit in arrays of their own,
 * beside the entries: a comparison reads two packed numbers rather than two fields of objects
 * scattered through the heap (a profile of 100 000 queued tasks showed those loads as the cost).
 */
class Heap<T extends Waiting> implements Ordered<T> {
  readonly items: T[] = [];
  readonly #priority: number[] = [];
  readonly #seq: number[] = [];

  get length(): number {
    return this.items.length;
  }

  push(entry: T): boolean {
    this.items.push(entry);
    this.#priority.push(entry.priority ?? 0);
    this.#seq.push(entry.seq ?? 0);
    this.#up(this.items.length - 1);
    return true;
  }

  peek(): T | undefined {
    return this.items[0];
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
 * comparison. The first entry that breaks that order moves the queue onto one such buffer per
 * priority ({@link Levels}), and an entry that breaks the order of its priority (a task coming
 * back out of submission order), or a priority beyond {@link MAX_LEVELS}, onto a binary heap.
 * The queue goes back to the single buffer once empty.
 */
export class WaitQueue<T extends Waiting> {
  readonly #fifo = new Denque<T>();
  #ordered: Ordered<T> | undefined;
  #lastSeq = BEFORE_ANY;

  get length(): number {
    return this.#ordered === undefined ? this.#fifo.length : this.#ordered.length;
  }

  push(entry: T): void {
    let ordered = this.#ordered;
    if (ordered === undefined) {
      const { priority, seq } = entry;
      if (
        (priority === undefined || priority === 0) &&
        !(seq !== undefined && seq < this.#lastSeq)
      ) {
        if (seq !== undefined) this.#lastSeq = seq;
        this.#fifo.push(entry);
        return;
      }
      ordered = this.#toLevels();
    }
    if (!ordered.push(entry)) this.#toHeap(ordered).push(entry);
  }

  /** The first entry, without taking it. */
  peek(): T | undefined {
    const ordered = this.#ordered;
    return ordered === undefined ? this.#fifo.peekFront() : ordered.peek();
  }

  /** Takes the first entry. */
  shift(): T | undefined {
    const ordered = this.#ordered;
    if (ordered === undefined) {
      const entry = this.#fifo.shift();
      if (entry === undefined) this.#lastSeq = BEFORE_ANY;
      return entry;
    }
    const top = ordered.shift();
    if (ordered.length === 0) {
      // Empty again: back to the ring buffer.
      this.#ordered = undefined;
      this.#lastSeq = BEFORE_ANY;
    }
    return top;
  }

  #toLevels(): Levels<T> {
    const levels = new Levels<T>();
    // The ring buffer holds priority 0 in order: each push lands at the end of that level.
    const fifo = this.#fifo;
    for (let entry = fifo.shift(); entry !== undefined; entry = fifo.shift()) levels.push(entry);
    this.#ordered = levels;
    return levels;
  }

  #toHeap(from: Ordered<T>): Heap<T> {
    const heap = new Heap<T>();
    // Taken in order: each push stays where it lands.
    for (let entry = from.shift(); entry !== undefined; entry = from.shift()) heap.push(entry);
    this.#ordered = heap;
    return heap;
  }
}
