/**
 * Images finish out of order; outputs are written in dataset order so that the same input gives
 * byte-identical files. Holds only results that wait for an earlier image.
 */
export class OrderedEmitter<T> {
  private next = 0;
  private readonly waiting = new Map<number, T>();
  private waitingBytes = 0;
  private chain: Promise<void> = Promise.resolve();
  /** `weigh`: about how many bytes an item holds while it waits (none given: 0). */
  constructor(
    private readonly emit: (item: T) => Promise<void>,
    private readonly weigh: (item: T) => number = () => 0,
  ) {}

  /** Results that arrived ahead of an earlier one, waiting for it. */
  get backlog(): number {
    return this.waiting.size;
  }

  /** What the waiting results hold, as `weigh` counts it. */
  get backlogBytes(): number {
    return this.waitingBytes;
  }

  /** Add result number `index`; returns once every result up to it that can be written has been. */
  push(index: number, item: T): Promise<void> {
    this.waiting.set(index, item);
    this.waitingBytes += this.weigh(item);
    const ready: T[] = [];
    while (this.waiting.has(this.next)) {
      const item = this.waiting.get(this.next) as T;
      ready.push(item);
      this.waitingBytes -= this.weigh(item);
      this.waiting.delete(this.next);
      this.next += 1;
    }
    this.chain = this.chain.then(async () => {
      for (const r of ready) await this.emit(r);
    });
    return this.chain;
  }

  /** A stopped run: write what waits, in order, skipping the images that never finished. */
  async flushGaps(): Promise<void> {
    const ready = [...this.waiting.entries()].sort((a, b) => a[0] - b[0]).map(([, item]) => item);
    this.waiting.clear();
    this.waitingBytes = 0;
    this.chain = this.chain.then(async () => {
      for (const r of ready) await this.emit(r);
    });
    await this.chain;
  }

  async drain(): Promise<void> {
    await this.chain;
    if (this.waiting.size > 0) throw new Error(`internal: ${this.waiting.size} results still wait for an earlier image`);
  }
}
