/**
 * The reconciler's persisted state, one item per sweep partition (`reconcile#sweep` for the whole
 * id space, see sweep-partitions.ts): the cursor of a full pass under way, of an orphan sweep under
 * way, and what the last passes saw. The item is also the partition's lease: two sweeps never run
 * one partition at once.
 */
import { ConditionFailedError } from '../domain/errors.ts';
import type { StateItem, StateStore } from '../ports/state-store.ts';

export interface SweepState {
  /** A full pass under way: the last version id done, and when and under which topology it began. */
  pass?: { after: string; startedAt: string; topology: string; verifyChecksums: boolean };
  /** The last full pass that reached its end. */
  lastFull?: { startedAt: string; completedAt: string; topology: string };
  /**
   * An orphan sweep under way (it follows each completed full pass and goes on, within each run's
   * budget, until every node is listed): the nodes still to list, the first one from after `after`.
   */
  orphans?: { nodes: string[]; after?: string };
  /** When the last pass (of either kind) began: the incremental pass looks at versions since. */
  watermark?: string;
  /** Epoch ms until which a sweep holds the state (renewed after each page). */
  heldUntil?: number;
}

export type HeldSweep = StateItem<SweepState>;

export { FIRST_ID } from './sweep-partitions.ts';

/**
 * A sweep renews its hold after every page; one that died lets go after this long. Longer than a
 * Lambda run (15 minutes), so a slow page (copies of big files) never lets a second sweep in.
 */
const HOLD_MS = 16 * 60_000;

export class SweepLease {
  private readonly state: StateStore;
  private readonly key: { pk: string; sk: string };

  constructor(state: StateStore, key: { pk: string; sk: string }) {
    this.state = state;
    this.key = key;
  }

  /** Takes the sweep state for this run, or undefined while another sweep holds it. */
  async hold(): Promise<HeldSweep | undefined> {
    const cur = await this.state.get<SweepState>(this.key.pk, this.key.sk);
    if (cur && (cur.data.heldUntil ?? 0) > Date.now()) return undefined;
    try {
      return await this.state.put<SweepState>(
        { ...this.key, data: { ...(cur?.data ?? {}), heldUntil: Date.now() + HOLD_MS } },
        cur ? { kind: 'version', version: cur.version } : { kind: 'absent' },
      );
    } catch (err) {
      if (err instanceof ConditionFailedError) return undefined;
      throw err;
    }
  }

  /** Writes the state and renews the hold; throws if another sweep took it over meanwhile. */
  save(held: HeldSweep, data: SweepState): Promise<HeldSweep> {
    return this.state.put<SweepState>(
      { ...this.key, data: { ...data, heldUntil: Date.now() + HOLD_MS } },
      { kind: 'version', version: held.version },
    );
  }

  /** Lets go of the state, keeping what it says. */
  async release(held: HeldSweep): Promise<void> {
    const { heldUntil: _h, ...rest } = held.data;
    await this.state.put<SweepState>({ ...this.key, data: rest }, { kind: 'version', version: held.version });
  }
}
