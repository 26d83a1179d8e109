/**
 * Aurora DSQL resolves write conflicts at commit with SQLSTATE 40001 and expects the client to
 * retry; it refuses connections beyond its limits with 53300/53400. No emulator does either, so the
 * errors are injected into the real PostgreSQL adapter's path on PostgreSQL 15: raised from a
 * statement inside the transaction body, and from a deferred constraint trigger at COMMIT (where
 * DSQL raises them). A sequence counts attempts, since it is not rolled back with them.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openPgDatabase } from '../../shared/adapters/postgres/pg-database.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import { problemHeaders, statusOf } from '../../shared/http/problem.ts';
import type { Database } from '../../shared/ports/database.ts';
import { uid } from '../support/fixtures.ts';

const schema = uid('retry_');
let db: Database;
let conflicts: number[] = [];

beforeAll(async () => {
  db = await openPgDatabase({
    connectionString: inject('pgUrl'),
    schema,
    max: 4,
    retry: { baseDelayMs: 1, maxDelayMs: 5, onConflict: (n) => conflicts.push(n) },
  });
  await db.exec(`
    create table rows (id int primary key);
    create table budget (n int not null);
    insert into budget values (0);
    create sequence tries;
    -- Fails the commit with 40001 while the sequence is at or below the budget.
    create function fail_commit() returns trigger language plpgsql as $$
    begin
      if nextval('tries') <= (select n from budget) then
        raise exception 'OC000 conflict (injected)' using errcode = '40001';
      end if;
      return null;
    end $$;
    create constraint trigger at_commit after insert on rows deferrable initially deferred
      for each row execute function fail_commit();
  `);
});

afterAll(async () => {
  await db.query(`drop schema ${schema} cascade`);
  await db.close();
});

const failNextCommits = async (n: number) => {
  await db.query(`select setval('tries', 1, false)`);
  await db.query('update budget set n = $1', [n]);
  conflicts = [];
};

describe('write conflicts (40001) on PostgreSQL', () => {
  it('re-runs a transaction whose commit loses a conflict, and commits it once', async () => {
    await failNextCommits(2);
    let runs = 0;
    const result = await db.transaction(async (tx) => {
      runs++;
      await tx.query('insert into rows values (1)');
      return 'done';
    });
    expect(result).toBe('done');
    expect(runs).toBe(3);
    expect(conflicts).toEqual([1, 2]);
    expect(await db.query('select id from rows where id = 1')).toEqual([{ id: 1 }]);
  });

  it('re-runs a transaction whose body sees a conflict, even when the body rethrows it', async () => {
    await failNextCommits(0);
    let runs = 0;
    await db.transaction(async (tx) => {
      runs++;
      try {
        if (runs < 3)
          await tx.query(`do $$ begin raise exception 'conflict' using errcode = '40001'; end $$`);
      } catch (err) {
        throw err instanceof Error ? new Error('wrapped', { cause: err }) : err;
      }
      await tx.query('insert into rows values (2)');
    });
    // The wrapper hides the code; the adapter saw the statement fail and retries all the same.
    expect(runs).toBe(3);
    expect(conflicts).toEqual([1, 2]);
    expect(await db.query('select id from rows where id = 2')).toEqual([{ id: 2 }]);
  });

  it('gives up after a bounded number of tries with 503 and Retry-After, leaving nothing written', async () => {
    await failNextCommits(1000);
    let runs = 0;
    const err = await db
      .transaction(async (tx) => {
        runs++;
        await tx.query('insert into rows values (3)');
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(statusOf(err)).toBe(503);
    expect(problemHeaders(err)['retry-after']).toBe('1');
    expect(runs).toBe(6);
    expect(await db.query('select id from rows where id = 3')).toEqual([]);
  });

  it('retries a single statement that loses a conflict', async () => {
    await failNextCommits(1);
    await db.query('insert into rows values (4)');
    expect(conflicts).toEqual([1]);
    expect(await db.query('select id from rows where id = 4')).toEqual([{ id: 4 }]);
  });
});

describe('connection limits (53300, 53400)', () => {
  it.each(['53300', '53400'])('answer %s with 503 and Retry-After, not 500', async (code) => {
    const err = await db
      .query(`do $$ begin raise exception 'too many connections' using errcode = '${code}'; end $$`)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(statusOf(err)).toBe(503);
    expect((err as DomainError).slug).toBe('dependency-unavailable');
    expect(problemHeaders(err)['retry-after']).toBe('1');
  });
});
