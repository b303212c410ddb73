/**
 * How long the CPU stages kept their threads busy, per stage, summed over every worker thread in
 * shared memory (the workers add to it as each task ends; the main thread reads it). Busy time is
 * a task's wall time on its thread: these tasks compute without waiting, so it is the CPU they
 * took unless the machine is oversubscribed.
 */
export type CpuStageKind = 'segment' | 'mask' | 'solve' | 'guide';

const KINDS: readonly CpuStageKind[] = ['segment', 'mask', 'solve', 'guide'];

/** Microseconds per stage, in KINDS' order. */
export interface StageClock {
  readonly micros: BigInt64Array;
}

export function createStageClock(): StageClock {
  return { micros: new BigInt64Array(new SharedArrayBuffer(KINDS.length * BigInt64Array.BYTES_PER_ELEMENT)) };
}

export function addBusyTime(clock: StageClock, kind: CpuStageKind, milliseconds: number): void {
  Atomics.add(clock.micros, KINDS.indexOf(kind), BigInt(Math.max(0, Math.round(milliseconds * 1000))));
}

/** Seconds each stage has been busy so far. */
export function busySeconds(clock: StageClock): Record<CpuStageKind, number> {
  const seconds = (kind: CpuStageKind): number => Number(Atomics.load(clock.micros, KINDS.indexOf(kind))) / 1e6;
  return { segment: seconds('segment'), mask: seconds('mask'), solve: seconds('solve'), guide: seconds('guide') };
}
