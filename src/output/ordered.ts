/**
 * Images finish out of order; outputs are written in dataset order so that the same input gives
 * byte-identical files. Holds only results that wait for an earlier image.
 */
export class OrderedEmitter<T> {
  private next = 0;
  private readonly waiting = new Map<number, T>();
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly emit: (item: T) => Promise<void>) {}

  /** Results that arrived ahead of an earlier one, waiting for it. */
  get backlog(): number {
    return this.waiting.size;
  }

  /** Add result number `index`; returns once every result up to it that can be written has been. */
  push(index: number, item: T): Promise<void> {
    this.waiting.set(index, item);
    const ready: T[] = [];
    while (this.waiting.has(this.next)) {
      ready.push(this.waiting.get(this.next) as T);
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
